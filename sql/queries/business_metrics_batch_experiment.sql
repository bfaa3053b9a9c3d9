-- The experiment (id, salt, cohort share) a batch was scored with: the one running when the
-- batch was created, from the batch's data date on.
SELECT e.experiment_id, e.salt, e.cohort_share
FROM serving.batches b
JOIN ops.experiments e
  ON e.created_at <= b.created_at AND (e.stopped_at IS NULL OR e.stopped_at > b.created_at)
 AND (e.started_on IS NULL OR e.started_on <= b.data_date)
WHERE b.batch_id = %s
ORDER BY e.experiment_id DESC
LIMIT 1
