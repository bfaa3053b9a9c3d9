-- `newsrec serve export`: every row of one batch, in the export's order (one user after the
-- other, ranks ascending). psycopg2 placeholder: %(batch_id)s.
SELECT user_id, rank, article_id, score, reason
FROM serving.recommendations
WHERE batch_id = %(batch_id)s
ORDER BY user_id, rank
