-- The first impression in [start, end): where a new warehouse's training window can begin.
-- (Only the window's partitions are read.)
SELECT min(event_ts) FROM warehouse.events
WHERE event_type = 'impression' AND event_ts >= %s AND event_ts < %s
