-- An arm's new share and status; a step up also moves its evidence start (since).
UPDATE ops.experiment_arms
SET share = %s, status = %s, step = step + %s,
    since = CASE WHEN %s THEN %s ELSE since END
WHERE experiment_id = %s AND arm = %s
