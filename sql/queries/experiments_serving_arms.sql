-- The arms of an experiment that still have users, in their order.
SELECT arm, kind, model_version, share FROM ops.experiment_arms WHERE experiment_id = %s AND share > 0 ORDER BY position
