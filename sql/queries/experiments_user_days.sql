-- The exposed cohort user-days of an experiment up to day D: what the test resamples.
SELECT logical_date, user_id, arm, model_version, dwell_s
FROM ops.experiment_user_days
WHERE experiment_id = %s AND logical_date <= %s
