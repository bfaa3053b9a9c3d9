-- The daily partitions of warehouse.events.
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'warehouse.events'::regclass
