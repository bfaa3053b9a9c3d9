-- The simulator's true gain (relevance x expected dwell) of each impression of some days.
SELECT event_id, relevance * expected_dwell AS gain FROM sim.impression_truth WHERE day = ANY(%(days)s::date[])
