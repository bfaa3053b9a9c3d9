-- Publications are present when articles come from more than one, with more than one trust score;
-- the placeholder publication of articles whose metadata is unknown does not count.
SELECT count(DISTINCT a.publication_id) > 1 AND count(DISTINCT p.trust_score) > 1
FROM warehouse.articles a JOIN warehouse.publications p USING (publication_id)
WHERE a.publication_id <> %(unknown_publication_id)s
