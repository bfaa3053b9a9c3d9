-- Label drift: a seeded sample of one day's impressions with their label, clicked (0/1) and
-- the dwell of the click. Reads may land a little after midnight, hence the grace on their
-- window. psycopg2 named placeholders: start, end, reads_end, percent (the sample size as a
-- share of 100), seed.
WITH clicks AS (
    SELECT impression_id, max(dwell_seconds) AS dwell_seconds
    FROM warehouse.events
    WHERE event_type = 'read' AND impression_id IS NOT NULL
      AND event_ts >= %(start)s AND event_ts < %(reads_end)s
    GROUP BY impression_id
)
SELECT (c.impression_id IS NOT NULL)::int AS clicked, c.dwell_seconds AS read_dwell_s
FROM warehouse.events AS i TABLESAMPLE BERNOULLI (%(percent)s) REPEATABLE (%(seed)s)
LEFT JOIN clicks AS c ON c.impression_id = i.event_id
WHERE i.event_type = 'impression' AND i.event_ts >= %(start)s AND i.event_ts < %(end)s
