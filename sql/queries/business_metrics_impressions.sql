-- Day D's recommended impressions (batch_id set) with the article's category, the reader's
-- region and the dwell of the read that answered each (0 when unread). Named parameters:
-- start and end, the day's bounds.
SELECT i.event_id, i.user_id, i.article_id, i.batch_id, i.arm, i.model_version, a.category, u.region,
       coalesce(r.dwell, 0)::float8 AS dwell, (r.impression_id IS NOT NULL)::int AS is_read
FROM warehouse.events i
JOIN warehouse.articles a USING (article_id)
JOIN warehouse.users u USING (user_id)
LEFT JOIN (
    SELECT impression_id, coalesce(max(dwell_seconds) FILTER (WHERE dwell_seconds > 0), 0) AS dwell
    FROM warehouse.events
    WHERE event_type = 'read' AND batch_id IS NOT NULL AND event_ts >= %(start)s AND event_ts < %(end)s
    GROUP BY impression_id
) r ON r.impression_id = i.event_id
WHERE i.event_type = 'impression' AND i.batch_id IS NOT NULL AND i.event_ts >= %(start)s AND i.event_ts < %(end)s
