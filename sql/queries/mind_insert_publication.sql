-- The one publication all MIND articles belong to (kept if it exists already).
INSERT INTO warehouse.publications (publication_id, name, domain, home_region, language,
                                    trust_score, misinformation_flag)
VALUES (%s, 'MIND (MSN News)', 'msn.com', 'GLOBAL', 'en', 0.8, false)
ON CONFLICT (publication_id) DO NOTHING
