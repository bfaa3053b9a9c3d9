-- Every article of the warehouse, for a MIND news.tsv.
SELECT article_id, category, subcategory, title, abstract, url
FROM warehouse.articles
ORDER BY article_id
