-- One experiment's row, by id.
SELECT experiment_id, name, salt, status, cohort_size, cohort_share, users_at_start, started_on,
       stopped_on, stop_reason, config
FROM ops.experiments
WHERE experiment_id = %s
