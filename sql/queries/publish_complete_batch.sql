-- Complete a fully written batch (only if still 'writing'); returns its data date.
UPDATE serving.batches SET status = 'complete', published_at = now()
WHERE batch_id = %s AND status = 'writing'
RETURNING data_date
