-- The batch readers are served now (NULL before the first publish).
SELECT batch_id FROM serving.live
