-- The name of the running experiment (at most one runs at a time).
SELECT name FROM ops.experiments WHERE status = 'running'
