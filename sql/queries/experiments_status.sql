-- An experiment's name and status (to say why it cannot be stopped).
SELECT name, status FROM ops.experiments WHERE experiment_id = %s
