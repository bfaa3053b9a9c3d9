-- The training mode the retrain checker chose for a day (its latest decision).
SELECT mode FROM ops.retrain_decisions WHERE logical_date = %s ORDER BY decision_id DESC LIMIT 1
