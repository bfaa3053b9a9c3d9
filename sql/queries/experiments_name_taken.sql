-- Does an experiment of this name exist already (running or not)?
SELECT 1 FROM ops.experiments WHERE name = %s
