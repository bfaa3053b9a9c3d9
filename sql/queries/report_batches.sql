-- The nightly report: the serving batches of day D and whether each is live.
SELECT b.batch_id, b.model_version, b.status, b.n_users, b.n_rows, b.created_at,
       (l.batch_id = b.batch_id)
FROM serving.batches b CROSS JOIN serving.live l
WHERE b.data_date = %s
ORDER BY b.batch_id
