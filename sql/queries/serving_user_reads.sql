-- (user, article) pairs already read, restricted to articles of the candidate window: those
-- are the only reads that can exclude a candidate.
SELECT DISTINCT e.user_id, e.article_id
FROM warehouse.events e
WHERE e.event_type = 'read'
  AND e.event_ts >= %(reads_since)s
  AND e.event_ts < %(window_end)s
  AND e.article_id IN (
      SELECT article_id FROM warehouse.articles
      WHERE published_at >= %(window_start)s AND published_at < %(window_end)s)
