-- Reads per region and article in a time range (the popularity baseline's counts).
SELECT u.region AS user_region, e.article_id, count(*)::float8 AS reads
FROM warehouse.events e JOIN warehouse.users u USING (user_id)
WHERE e.event_type = 'read' AND e.event_ts >= %(start)s AND e.event_ts < %(end)s
GROUP BY 1, 2
