-- Label drift: a seeded sample of one day's impressions with their label, clicked (0/1) and
-- the dwell of the click, in one scan of the day. An impression is drawn when the low 40 bits of
-- a seeded hash of its id fall below the cutoff (the sample's share of 2^40); a read carries its
-- impression's id, so the same hash draws exactly the reads of the drawn impressions, and only the
-- drawn rows are grouped (the day's reads are not aggregated first). Reads may land a little after
-- midnight, hence the grace on their window; a group counts only with its impression on the day.
-- psycopg2 named placeholders: start, end, reads_end, cutoff, seed.
SELECT bool_or(event_type = 'read')::int AS clicked,
       max(dwell_seconds) FILTER (WHERE event_type = 'read') AS read_dwell_s
FROM (
    SELECT CASE WHEN event_type = 'impression' THEN event_id ELSE impression_id END AS impression,
           event_type, event_ts, dwell_seconds
    FROM warehouse.events
    WHERE event_ts >= %(start)s AND event_ts < %(reads_end)s
      AND (event_type = 'impression' OR (event_type = 'read' AND impression_id IS NOT NULL))
) AS e
WHERE (hashint8extended(impression, %(seed)s) & 1099511627775) < %(cutoff)s
GROUP BY impression
HAVING bool_or(event_type = 'impression' AND event_ts < %(end)s)
