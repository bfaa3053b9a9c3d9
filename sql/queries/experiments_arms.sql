-- An experiment's arms in layout order.
SELECT arm, kind, model_version, share, step, status, since
FROM ops.experiment_arms
WHERE experiment_id = %s
ORDER BY position
