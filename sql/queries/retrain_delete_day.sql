-- Forget a day's retrain decision (a re-run replaces it).
DELETE FROM ops.retrain_decisions WHERE logical_date = %s
