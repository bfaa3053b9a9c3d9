-- Rollback's default target: the newest complete batch older than the live one.
SELECT max(batch_id) FROM serving.batches WHERE status = 'complete' AND batch_id < %s
