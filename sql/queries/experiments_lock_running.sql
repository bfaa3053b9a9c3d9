-- The running experiment, row-locked while the night's decisions are taken and written.
SELECT experiment_id, name, config FROM ops.experiments WHERE status = 'running' FOR UPDATE
