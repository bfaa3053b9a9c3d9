-- Mark one batch failed if it is still 'writing' (its publish died before the switch).
UPDATE serving.batches SET status = 'failed' WHERE batch_id = %s AND status = 'writing'
