-- The nightly report: the latest run of each stage of day D, its seconds and error.
SELECT DISTINCT ON (stage) stage, status,
       round(extract(epoch FROM finished_at - started_at)::numeric, 1), details->>'error'
FROM ops.runs
WHERE logical_date = %s
ORDER BY stage, run_id DESC
