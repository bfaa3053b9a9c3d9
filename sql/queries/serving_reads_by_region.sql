-- Reads on day D of articles from the candidate window, by the reader's region.
SELECT u.region, e.article_id,
       count(*) AS reads,
       sum(greatest(coalesce(e.dwell_seconds, 0), 0))::float8 AS dwell_s
FROM warehouse.events e
JOIN warehouse.users u ON u.user_id = e.user_id
WHERE e.event_type = 'read'
  AND e.event_ts >= %(day_start)s
  AND e.event_ts < %(window_end)s
  AND e.article_id IN (
      SELECT article_id FROM warehouse.articles
      WHERE published_at >= %(window_start)s AND published_at < %(window_end)s)
GROUP BY u.region, e.article_id
