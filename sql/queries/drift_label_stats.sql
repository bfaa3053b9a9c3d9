-- Label drift: impressions, clicks and read dwell of one UTC day, exact (not sampled).
-- psycopg2 named placeholders: start, end (the day's bounds).
SELECT count(*) FILTER (WHERE event_type = 'impression') AS impressions,
       count(*) FILTER (WHERE event_type = 'read' AND impression_id IS NOT NULL) AS clicks,
       avg(dwell_seconds) FILTER (WHERE event_type = 'read') AS mean_dwell_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY dwell_seconds) FILTER (WHERE event_type = 'read')
           AS median_dwell_s
FROM warehouse.events
WHERE event_ts >= %(start)s AND event_ts < %(end)s
