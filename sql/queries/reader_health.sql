-- The REST reader's health: the live batch and its age (one row; batch_id NULL before the
-- first publish).
SELECT l.batch_id, b.model_version, b.created_at, l.switched_at,
       extract(epoch FROM now() - b.created_at)::float8 AS age_s
FROM serving.live l
LEFT JOIN serving.batches b ON b.batch_id = l.batch_id
