-- The events partition of one day, created if missing; returns its table name.
SELECT warehouse.ensure_events_partition(%s)
