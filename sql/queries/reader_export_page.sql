-- The REST reader's bulk export: the live batch and the bounds of one page of users. Run
-- first in the export's REPEATABLE READ transaction, whose rows then come from this batch id
-- (reader_export_rows), so a pointer switch during the stream cannot mix batches.
-- asyncpg placeholders: $1 after_user_id (exclusive), $2 users per page. No live batch: no row.
-- last_user_id is NULL when the page is empty; more tells whether users follow it (the scan
-- reads one user beyond the page, along the primary key, instead of a second search).
WITH live AS (
    SELECT b.batch_id, b.model_version, b.created_at
    FROM serving.live l
    JOIN serving.batches b ON b.batch_id = l.batch_id
),
page AS (
    SELECT DISTINCT r.user_id
    FROM serving.recommendations r
    WHERE r.batch_id = (SELECT batch_id FROM live)
      AND r.user_id > $1
    ORDER BY r.user_id
    LIMIT $2 + 1
),
numbered AS (
    SELECT user_id, row_number() OVER (ORDER BY user_id) AS n FROM page
),
bounds AS (
    SELECT max(user_id) FILTER (WHERE n <= $2) AS last_user_id, count(*) > $2 AS more FROM numbered
)
SELECT live.batch_id, live.model_version, live.created_at, bounds.last_user_id, bounds.more
FROM live, bounds
