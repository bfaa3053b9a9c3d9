-- What was known of some articles before a day, from events strictly before %(before)s (none of
-- the day or later) and not older than %(since)s: their reads (clicks, with or without a logged
-- impression), their logged impressions and how many of those were clicked (so clicked <=
-- impressions), and their publish time (seconds since the epoch).
SELECT a.article_id, extract(epoch FROM a.published_at)::float8 AS published_s,
       coalesce(h.reads, 0)::float8 AS reads, coalesce(h.impressions, 0)::float8 AS impressions,
       coalesce(h.clicked, 0)::float8 AS clicked
FROM warehouse.articles a
LEFT JOIN (
    SELECT article_id,
           count(*) FILTER (WHERE event_type = 'read') AS reads,
           count(*) FILTER (WHERE event_type = 'impression') AS impressions,
           count(DISTINCT impression_id) FILTER (WHERE event_type = 'read') AS clicked
    FROM warehouse.events
    WHERE event_ts >= %(since)s AND event_ts < %(before)s AND article_id = ANY(%(articles)s)
    GROUP BY article_id
) h USING (article_id)
WHERE a.article_id = ANY(%(articles)s)
