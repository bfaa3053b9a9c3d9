-- The ops exporter: per stage and outcome, the newest run's end and logical date (epoch
-- seconds; NULL when none finished or it had no date). 'running' rows have no end and are
-- left out: a killed run stays 'running' until the next run marks it abandoned.
SELECT stage, status,
       extract(epoch FROM max(finished_at))::double precision,
       extract(epoch FROM max(logical_date)::timestamp AT TIME ZONE 'UTC')::double precision
FROM ops.runs
WHERE status <> 'running'
GROUP BY stage, status
ORDER BY stage, status
