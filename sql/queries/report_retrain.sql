-- The nightly report: the retrain checker's latest decision for day D.
SELECT retrain, mode, champion_version, reasons, evidence
FROM ops.retrain_decisions
WHERE logical_date = %s
ORDER BY decision_id DESC
LIMIT 1
