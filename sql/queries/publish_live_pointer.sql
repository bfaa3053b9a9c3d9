-- The live batch and when the pointer last moved.
SELECT batch_id, switched_at FROM serving.live
