-- Day D's exposed cohort user-days, replaced by a re-run.
DELETE FROM ops.experiment_user_days WHERE logical_date = %s
