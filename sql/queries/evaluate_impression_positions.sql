-- The source's impression (slate) id and list position of each impression event in a time range
-- that has them (a MIND import): the keys of truth.tsv written by `newsrec warehouse export-mind`.
SELECT event_id, slate_id, position
FROM warehouse.events
WHERE event_type = 'impression' AND event_ts >= %(start)s AND event_ts < %(end)s AND slate_id IS NOT NULL
