-- Impressions from the start of the exported window on, whether each was read (a read points
-- at its impression) and the simulator's truth for it (NULL where it has none).
SELECT i.event_id, i.user_id, i.article_id, i.event_ts, i.position, i.surface, i.slate_id,
       (r.impression_id IS NOT NULL)::int AS clicked, t.relevance, t.expected_dwell
FROM warehouse.events i
LEFT JOIN (SELECT DISTINCT impression_id FROM warehouse.events
           WHERE event_type = 'read' AND impression_id IS NOT NULL AND event_ts >= %(start)s) r
  ON r.impression_id = i.event_id
LEFT JOIN sim.impression_truth t ON t.event_id = i.event_id
WHERE i.event_type = 'impression' AND i.event_ts >= %(start)s
