-- The events partition of day D (created if missing); returns its table name.
SELECT warehouse.ensure_events_partition(%(day)s)
