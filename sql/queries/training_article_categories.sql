-- The categories of the articles a training read shows (the one parameter: a bigint[] literal of their ids).
SELECT article_id, category FROM warehouse.articles WHERE article_id = ANY(%s::bigint[])
