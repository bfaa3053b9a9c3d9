-- An experiment referred to by name.
SELECT experiment_id FROM ops.experiments WHERE name = %s
