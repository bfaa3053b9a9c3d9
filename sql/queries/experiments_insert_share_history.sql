-- A share an arm takes from a date on, and why (a decision of the promoter/demoter).
INSERT INTO ops.experiment_share_history (experiment_id, arm, effective_from, share, reason)
VALUES (%s, %s, %s, %s, %s)
