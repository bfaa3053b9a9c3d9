-- Each user's distinct reads before the exported window (a MIND history), oldest first.
SELECT user_id, article_id, min(event_ts) AS first_read
FROM warehouse.events
WHERE event_type = 'read' AND event_ts < %(start)s
GROUP BY user_id, article_id
ORDER BY user_id, first_read, article_id
