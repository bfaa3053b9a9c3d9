-- The arms still active in an experiment that ended.
UPDATE ops.experiment_arms SET status = 'ended' WHERE experiment_id = %s AND status = 'active'
