-- The REST reader: the live batch and the lists of several requests at once, each a user's
-- list or the fallback list when the user has none, in ONE statement, so that a pointer
-- switch or prune between two statements can never mix batches, and so that the requests
-- that arrive while a statement runs share the next round trip (pipelines.reader.queries).
-- asyncpg placeholders, arrays of one element per request: $1 user ids, $2 limits, $3
-- fallback regions (the region's list when the batch has one, else GLOBAL). No live batch:
-- no row.
--
-- One row per request: ``ord`` (its 1-based place in the arrays), the batch and the kind of
-- list (for the reader's metrics) and ``body``, the response's JSON text, built here so that
-- the reader passes it on without decoding rows, validating a model and serialising it
-- again. It is the JSON of the route's response model
-- (pipelines.reader.schemas.RecommendationsOut): its keys in the model's order, compact,
-- generated_at as pydantic writes an aware datetime (UTC, "Z", microseconds only when not
-- zero), a non-finite score as null; a score is the float8 of the stored real, as the
-- driver read it, in PostgreSQL's shortest exact form (an integral score reads "1", not
-- "1.0": the same JSON number). tests/integration/test_reader.py compares the two.
WITH live AS (
    SELECT b.batch_id, b.model_version, b.created_at,
           to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
               || CASE WHEN extract(microseconds FROM b.created_at) % 1000000 = 0 THEN ''
                       ELSE to_char(b.created_at AT TIME ZONE 'UTC', '.US') END
               || 'Z' AS generated_at
    FROM serving.live l
    JOIN serving.batches b ON b.batch_id = l.batch_id
)
SELECT q.ord, live.batch_id, live.created_at, one.fallback, one.body
FROM live
CROSS JOIN unnest($1::bigint[], $2::int[], $3::text[]) WITH ORDINALITY AS q(user_id, lim, region, ord)
CROSS JOIN LATERAL (
    WITH personal AS (
        SELECT false AS is_fallback, r.rank, r.article_id, r.title, r.url, r.category, r.score,
               r.reason, r.region, r.arm, r.model_version
        FROM serving.recommendations r
        WHERE r.batch_id = live.batch_id
          AND r.user_id = q.user_id
          AND r.rank <= q.lim
    ),
    fallback_region AS (
        SELECT coalesce(
            (SELECT f.region FROM serving.fallback_recommendations f
             WHERE f.batch_id = live.batch_id AND f.region = q.region LIMIT 1),
            'GLOBAL') AS region
    ),
    fallback AS (
        SELECT true AS is_fallback, f.rank, f.article_id, f.title, f.url, f.category, f.score,
               f.reason, f.region, NULL::text AS arm, NULL::text AS model_version
        FROM serving.fallback_recommendations f
        WHERE f.batch_id = live.batch_id
          AND f.region = (SELECT region FROM fallback_region)
          AND f.rank <= q.lim
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
    SELECT o.fallback, left(row_to_json(o)::text, -1) || ',"items":[' || items.json || ']}' AS body
    FROM items
    LEFT JOIN head ON true
    CROSS JOIN LATERAL (
        SELECT q.user_id,
               live.batch_id,
               coalesce(head.model_version, live.model_version) AS model_version,
               live.generated_at,
               head.is_fallback IS NOT false AS fallback,
               CASE WHEN head.rank IS NULL THEN q.region ELSE head.region END AS region,
               head.arm
    ) o
) one
