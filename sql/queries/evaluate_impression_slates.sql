-- The impression (slate) of each impression event in a time range: the source's slate id where
-- it logged one (MIND), else one user's impressions at one time on one surface (the simulator
-- shows a session's slate at once; see pipelines/warehouse/mind/export.py).
SELECT event_id,
       coalesce('id:' || slate_id,
                'u:' || user_id || '|' || extract(epoch FROM event_ts)::text || '|' || surface) AS slate
FROM warehouse.events
WHERE event_type = 'impression' AND event_ts >= %(start)s AND event_ts < %(end)s
