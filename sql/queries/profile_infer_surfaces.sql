-- Surfaces are present when impressions come from more than one surface.
SELECT count(DISTINCT surface) > 1 FROM warehouse.events WHERE event_type = 'impression'
