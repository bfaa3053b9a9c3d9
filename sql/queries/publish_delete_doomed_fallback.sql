-- Drop the fallback lists of failed and retired batches.
DELETE FROM serving.fallback_recommendations f USING serving.batches b
WHERE f.batch_id = b.batch_id AND b.status IN ('failed', 'retired')
