-- The regional (and GLOBAL) fallback lists of a published batch.
SELECT region, rank, article_id
FROM serving.fallback_recommendations
WHERE batch_id = %(batch_id)s
