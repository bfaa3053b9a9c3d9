-- The articles a published batch shows, with their latent quality.
SELECT a.article_id, a.publication_id, a.category, a.published_at, s.quality
FROM warehouse.articles a
JOIN sim.articles s USING (article_id)
WHERE a.article_id IN (
    SELECT article_id FROM serving.recommendations WHERE batch_id = %(batch_id)s
    UNION
    SELECT article_id FROM serving.fallback_recommendations WHERE batch_id = %(batch_id)s
)
