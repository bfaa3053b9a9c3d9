-- An experiment referred to by a string of digits: its id, or a name made of digits.
SELECT experiment_id FROM ops.experiments WHERE experiment_id = %s OR name = %s
