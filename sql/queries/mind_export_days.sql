-- The first and last UTC day with events.
SELECT min(event_ts AT TIME ZONE 'UTC')::date, max(event_ts AT TIME ZONE 'UTC')::date
FROM warehouse.events
