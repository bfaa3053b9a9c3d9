-- The default experiment: the running one, else the newest.
SELECT experiment_id FROM ops.experiments
ORDER BY (status = 'running') DESC, experiment_id DESC
LIMIT 1
