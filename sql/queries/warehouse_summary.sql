-- One row per table or slice that `newsrec warehouse summary` prints.
SELECT 'publications' AS what, count(*)::bigint AS n FROM warehouse.publications
UNION ALL SELECT 'flagged publications', count(*) FROM warehouse.publications WHERE misinformation_flag
UNION ALL SELECT 'articles', count(*) FROM warehouse.articles
UNION ALL SELECT 'users', count(*) FROM warehouse.users
UNION ALL SELECT 'users ' || region, count(*) FROM warehouse.users GROUP BY region
UNION ALL SELECT 'impressions', count(*) FROM warehouse.events WHERE event_type = 'impression'
UNION ALL SELECT 'reads', count(*) FROM warehouse.events WHERE event_type = 'read'
