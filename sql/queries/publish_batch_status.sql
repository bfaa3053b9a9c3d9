-- The status of one batch (rollback to a named batch).
SELECT status FROM serving.batches WHERE batch_id = %s
