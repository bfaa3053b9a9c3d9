-- The publication of articles whose metadata is unknown (named by events, missing from the
-- catalogue): neutral trust, never flagged; kept if it exists already.
INSERT INTO warehouse.publications (publication_id, name, domain, home_region, language,
                                    trust_score, misinformation_flag)
VALUES (%s, 'unknown publication', 'unknown', 'GLOBAL', 'und', 0.5, false)
ON CONFLICT (publication_id) DO NOTHING
