-- Record a written batch's user and row counts; parameters: n_users, n_rows, batch_id.
UPDATE serving.batches SET n_users = %s, n_rows = %s WHERE batch_id = %s
