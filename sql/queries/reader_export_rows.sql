-- The REST reader's bulk export: the rows of one page of users of one batch, in line order.
-- asyncpg placeholders: $1 batch_id, $2 after_user_id (exclusive), $3 the page's last user_id.
SELECT user_id, rank, article_id, score, reason
FROM serving.recommendations
WHERE batch_id = $1
  AND user_id > $2
  AND user_id <= $3
ORDER BY user_id, rank
