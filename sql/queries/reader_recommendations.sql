-- The REST reader: the live batch and one user's list, or the fallback list when the user
-- has none, in ONE statement so that a pointer switch or prune between two statements can
-- never mix batches. asyncpg placeholders: $1 user_id, $2 limit, $3 fallback region (the
-- region's list when the batch has one, else GLOBAL). No live batch: no rows.
WITH live AS (
    SELECT b.batch_id, b.model_version, b.created_at
    FROM serving.live l
    JOIN serving.batches b ON b.batch_id = l.batch_id
),
personal AS (
    SELECT false AS is_fallback, r.rank, r.article_id, r.title, r.url, r.category, r.score,
           r.reason, r.region, r.arm, r.model_version
    FROM serving.recommendations r
    WHERE r.batch_id = (SELECT batch_id FROM live)
      AND r.user_id = $1
      AND r.rank <= $2
),
fallback_region AS (
    SELECT coalesce(
        (SELECT f.region FROM serving.fallback_recommendations f
         WHERE f.batch_id = (SELECT batch_id FROM live) AND f.region = $3 LIMIT 1),
        'GLOBAL') AS region
),
fallback AS (
    SELECT true AS is_fallback, f.rank, f.article_id, f.title, f.url, f.category, f.score,
           f.reason, f.region, NULL::text AS arm, NULL::text AS model_version
    FROM serving.fallback_recommendations f
    WHERE f.batch_id = (SELECT batch_id FROM live)
      AND f.region = (SELECT region FROM fallback_region)
      AND f.rank <= $2
      AND NOT EXISTS (SELECT 1 FROM personal)
)
SELECT live.batch_id, coalesce(x.model_version, live.model_version) AS model_version, live.created_at,
       x.is_fallback, x.rank, x.article_id, x.title, x.url, x.category, x.score, x.reason, x.region, x.arm
FROM live
LEFT JOIN (SELECT * FROM personal UNION ALL SELECT * FROM fallback) x ON true
ORDER BY x.rank
