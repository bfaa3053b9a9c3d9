-- The most recent batches, newest first (`newsrec serve status`); parameter: how many.
SELECT batch_id, data_date, model_version, status, created_at, published_at, n_users, n_rows
FROM serving.batches
ORDER BY batch_id DESC
LIMIT %s
