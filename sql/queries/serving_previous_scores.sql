-- Scores of every tenth user in the newest complete batch of an earlier date (score drift's reference).
SELECT r.score FROM serving.recommendations r WHERE r.batch_id = (SELECT max(batch_id)
FROM serving.batches WHERE data_date < %s AND status IN ('complete', 'retired'))
AND r.user_id %% 10 = 0 LIMIT 50000
