-- Articles the simulated readers may be shown on day D, with their latent quality: published
-- from the article window before D up to the end of D.
SELECT a.article_id, a.publication_id, a.category, a.published_at, s.quality
FROM warehouse.articles a
JOIN sim.articles s USING (article_id)
WHERE a.published_at >= %(window_start)s
  AND a.published_at < %(window_end)s
