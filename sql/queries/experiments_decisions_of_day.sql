-- Decisions already taken on day D (a re-run of the night returns them).
SELECT arm, decision, share_before, share_after
FROM ops.experiment_decisions
WHERE experiment_id = %s AND logical_date = %s
ORDER BY decision_id
