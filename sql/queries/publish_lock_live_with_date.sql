-- The live batch and its data date, taking the row lock of serving.live before the switch.
SELECT l.batch_id, b.data_date
FROM serving.live l
LEFT JOIN serving.batches b ON b.batch_id = l.batch_id
FOR UPDATE OF l
