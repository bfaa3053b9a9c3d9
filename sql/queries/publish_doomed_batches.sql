-- Failed and retired batches whose partition table still exists: attached? detach pending?
SELECT b.batch_id, i.inhrelid IS NOT NULL, coalesce(i.inhdetachpending, false)
FROM serving.batches b
JOIN pg_class c ON c.relname = 'recommendations_b' || b.batch_id
 AND c.relnamespace = 'serving'::regnamespace
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
WHERE b.status IN ('failed', 'retired') ORDER BY b.batch_id
