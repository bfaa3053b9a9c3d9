-- Articles that may be recommended for day D: published in the window before the end of D,
-- never from a publication flagged for misinformation, never an article whose metadata is
-- unknown (named by events, missing from the catalogue: nothing to show, cap or explain).
SELECT a.article_id, a.publication_id, a.category, a.published_at
FROM warehouse.articles a
JOIN warehouse.publications p ON p.publication_id = a.publication_id
WHERE a.published_at >= %(window_start)s
  AND a.published_at < %(window_end)s
  AND a.metadata_known
  AND NOT p.misinformation_flag
