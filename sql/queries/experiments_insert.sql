-- A new running experiment; returns its id.
INSERT INTO ops.experiments (name, salt, cohort_size, cohort_share, users_at_start, started_on, config)
VALUES (%s, %s, %s, %s, %s, %s, %s)
RETURNING experiment_id
