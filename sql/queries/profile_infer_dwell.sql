-- Dwell is present when any read carries a dwell time.
SELECT EXISTS (SELECT 1 FROM warehouse.events WHERE event_type = 'read' AND dwell_seconds IS NOT NULL)
