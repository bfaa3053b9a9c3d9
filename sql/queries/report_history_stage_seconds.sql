-- The nightly report's charts: seconds of the latest run of each stage, per night of the window.
SELECT DISTINCT ON (logical_date, stage) logical_date, stage,
       extract(epoch FROM finished_at - started_at)::float8
FROM ops.runs
WHERE logical_date BETWEEN %(start)s AND %(day)s
ORDER BY logical_date, stage, run_id DESC
