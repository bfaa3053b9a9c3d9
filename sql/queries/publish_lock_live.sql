-- The live batch, taking the row lock of serving.live (publish and rollback serialise on it).
SELECT batch_id FROM serving.live FOR UPDATE
