-- Title, url, category, publication name and misinformation flag of the ids in publish_ids.
SELECT a.article_id, a.title, a.url, a.category, p.name, p.misinformation_flag
FROM publish_ids i
JOIN warehouse.articles a ON a.article_id = i.id
JOIN warehouse.publications p ON p.publication_id = a.publication_id
