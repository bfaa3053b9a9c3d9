-- An arm's first share, in the share history of a new experiment.
INSERT INTO ops.experiment_share_history (experiment_id, arm, effective_from, share, reason)
VALUES (%s, %s, %s, %s, 'created')
