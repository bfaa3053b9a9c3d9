-- Retire complete batches beyond the newest keep (never the live one); returns their ids.
UPDATE serving.batches SET status = 'retired'
WHERE status = 'complete' AND batch_id IS DISTINCT FROM %(live)s AND batch_id NOT IN (
  SELECT batch_id FROM serving.batches WHERE status = 'complete'
  ORDER BY batch_id DESC LIMIT %(keep)s)
RETURNING batch_id
