-- The rows a warehouse must have before a night can train (`newsrec warehouse check`).
SELECT EXISTS (SELECT 1 FROM warehouse.users) AS users,
       EXISTS (SELECT 1 FROM warehouse.articles) AS articles,
       EXISTS (SELECT 1 FROM warehouse.events WHERE event_type = 'impression') AS impressions,
       EXISTS (SELECT 1 FROM warehouse.events WHERE event_type = 'read' AND impression_id IS NOT NULL) AS clicks
