-- The live batch's id.
SELECT batch_id FROM serving.live
