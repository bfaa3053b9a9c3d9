-- The REST reader: the live batch and one user's list, or the fallback list when the user
-- has none, in ONE statement so that a pointer switch or prune between two statements can
-- never mix batches. asyncpg placeholders: $1 user_id, $2 limit, $3 fallback region (the
-- region's list when the batch has one, else GLOBAL). No live batch: no row.
--
-- One row: the batch and the kind of list (for the reader's metrics) and ``body``, the
-- response's JSON text, built here so that the reader passes it on without decoding rows,
-- validating a model and serialising it again. It is the JSON of the route's response model
-- (pipelines.reader.schemas.RecommendationsOut): its keys in the model's order, compact,
-- generated_at as pydantic writes an aware datetime (UTC, "Z", microseconds only when not
-- zero), a non-finite score as null; a score is the float8 of the stored real, as the
-- driver read it, in PostgreSQL's shortest exact form (an integral score reads "1", not
-- "1.0": the same JSON number). tests/integration/test_reader.py compares the two.
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
),
x AS (
    SELECT * FROM personal UNION ALL SELECT * FROM fallback
),
head AS (
    SELECT is_fallback, rank, region, arm, model_version FROM x ORDER BY rank LIMIT 1
),
items AS (
    SELECT coalesce(string_agg(row_to_json(i)::text, ',' ORDER BY i.rank), '') AS json
    FROM (
        SELECT rank, article_id, title, url, category,
               CASE WHEN score::float8 IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE score::float8 END AS score,
               reason
        FROM x
    ) i
)
SELECT live.batch_id, live.created_at, o.fallback,
       left(row_to_json(o)::text, -1) || ',"items":[' || items.json || ']}' AS body
FROM live
LEFT JOIN head ON true
CROSS JOIN items
CROSS JOIN LATERAL (
    SELECT $1::bigint AS user_id,
           live.batch_id,
           coalesce(head.model_version, live.model_version) AS model_version,
           to_char(live.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
               || CASE WHEN extract(microseconds FROM live.created_at) % 1000000 = 0 THEN ''
                       ELSE to_char(live.created_at AT TIME ZONE 'UTC', '.US') END
               || 'Z' AS generated_at,
           head.is_fallback IS NOT false AS fallback,
           CASE WHEN head.rank IS NULL THEN $3::text ELSE head.region END AS region,
           head.arm
) o
