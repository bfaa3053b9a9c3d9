-- Every decision of the promoter/demoter on one experiment, in order.
SELECT logical_date, arm, decision, share_before, share_after, reasons, evidence
FROM ops.experiment_decisions
WHERE experiment_id = %s
ORDER BY logical_date, decision_id
