-- The personal lists of a published batch as the simulated readers see them.
SELECT r.user_id, r.rank, r.article_id, r.arm,
       coalesce(r.model_version, b.model_version) AS model_version
FROM serving.recommendations r
JOIN serving.batches b USING (batch_id)
WHERE r.batch_id = %(batch_id)s
