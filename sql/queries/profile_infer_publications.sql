-- Publications are present when articles come from more than one, with more than one trust score.
SELECT count(DISTINCT a.publication_id) > 1 AND count(DISTINCT p.trust_score) > 1
FROM warehouse.articles a JOIN warehouse.publications p USING (publication_id)
