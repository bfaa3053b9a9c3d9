-- One pair of the live batch to warm explanations with at the reader's start: the first
-- user's top item (the primary key's order, so one index probe). No row: nothing is live.
SELECT b.model_version, coalesce(b.model_key, b.model_version) AS model_key, b.data_date, r.user_id, r.article_id
FROM serving.live l
JOIN serving.batches b ON b.batch_id = l.batch_id
JOIN serving.recommendations r ON r.batch_id = b.batch_id
ORDER BY r.user_id, r.rank
LIMIT 1
