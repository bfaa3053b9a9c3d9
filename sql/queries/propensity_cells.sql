-- Logged impressions with a position in a time range, counted per (article, source, position):
-- how many and how many were clicked (an impression with at least one read). The source says
-- what ordered the slate: a served model's version, the fallback lists of a published batch,
-- or the logging policy (no batch). Reads may land a little after the range (%(end_reads)s).
-- %(personalised)s false leaves out the impressions a served model ordered (a model_version):
-- the fit leaves them out whenever the others suffice (in a closed loop they are the share of
-- sessions that show a published list).
SELECT i.article_id,
       coalesce('model ' || i.model_version,
                CASE WHEN i.batch_id IS NULL THEN 'logging policy' ELSE 'fallback list' END) AS source,
       i.position::int AS position,
       count(*)::float8 AS impressions,
       count(c.impression_id)::float8 AS clicks
FROM warehouse.events i
LEFT JOIN (
    SELECT DISTINCT impression_id
    FROM warehouse.events
    WHERE event_type = 'read' AND impression_id IS NOT NULL
      AND event_ts >= %(start)s AND event_ts < %(end_reads)s
) c ON c.impression_id = i.event_id
WHERE i.event_type = 'impression' AND i.position IS NOT NULL
  AND i.event_ts >= %(start)s AND i.event_ts < %(end)s
  AND (%(personalised)s OR i.model_version IS NULL)
GROUP BY 1, 2, 3
