-- One arm of a new experiment, in layout order (position).
INSERT INTO ops.experiment_arms (experiment_id, arm, position, kind, model_version, share, since)
VALUES (%s, %s, %s, %s, %s, %s, %s)
