-- How many challenger arms still have something to learn (active, share above 0).
SELECT count(*) FROM ops.experiment_arms
WHERE experiment_id = %s AND kind = 'challenger' AND status = 'active' AND share > 0
