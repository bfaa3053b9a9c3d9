-- Stop an experiment by hand if it is running; returns its name (no row: it was not running).
UPDATE ops.experiments SET status = 'stopped', stopped_at = now(), stopped_on = %s, stop_reason = %s
WHERE experiment_id = %s AND status = 'running'
RETURNING name
