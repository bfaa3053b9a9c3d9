-- Events per UTC day: impressions, reads, click-through and mean dwell of reads.
SELECT (event_ts AT TIME ZONE 'UTC')::date AS day,
       count(*) FILTER (WHERE event_type = 'impression') AS impressions,
       count(*) FILTER (WHERE event_type = 'read') AS reads,
       round(count(*) FILTER (WHERE event_type = 'read')::numeric
             / nullif(count(*) FILTER (WHERE event_type = 'impression'), 0), 4) AS ctr,
       round(avg(dwell_seconds) FILTER (WHERE event_type = 'read')::numeric, 1) AS mean_dwell_s
FROM warehouse.events
GROUP BY 1
ORDER BY 1
