-- The live batch's row of one (user, article) pair, for explanations. asyncpg placeholders:
-- $1 user_id, $2 article_id. No row: the pair is not recommended in the live batch.
SELECT b.batch_id, b.model_version, coalesce(b.model_key, b.model_version) AS model_key, b.data_date, r.rank,
       r.score
FROM serving.live l
JOIN serving.batches b ON b.batch_id = l.batch_id
JOIN serving.recommendations r ON r.batch_id = b.batch_id AND r.user_id = $1 AND r.article_id = $2
