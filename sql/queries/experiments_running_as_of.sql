-- The experiment running on a day, if any.
SELECT experiment_id, name, salt, cohort_share FROM ops.experiments WHERE status = 'running' AND (started_on IS NULL OR started_on <= %s)
