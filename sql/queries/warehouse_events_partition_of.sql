-- The events partition of day D, if it exists (never created here: see warehouse_events_partition).
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'warehouse' AND c.relname = format('events_%%s', to_char(%(day)s::date, 'YYYYMMDD'))
