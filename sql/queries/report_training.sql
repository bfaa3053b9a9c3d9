-- The nightly report: day D's latest training run and what it recorded.
SELECT status, details->>'mode', details->>'objective', details->>'warm_from', details->>'version',
       (details->>'reused')::boolean, (details->>'promoted')::boolean, (details->>'ndcg')::float8,
       round(extract(epoch FROM finished_at - started_at)::numeric, 1), details->>'objective_note'
FROM ops.runs
WHERE logical_date = %s AND stage = 'train'
ORDER BY run_id DESC
LIMIT 1
