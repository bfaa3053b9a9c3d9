-- Under the publish lock: every batch still 'writing' was left by a crashed publish.
UPDATE serving.batches SET status = 'failed' WHERE status = 'writing' RETURNING batch_id
