-- One decision of the promoter/demoter on one arm, with its reasons and evidence (JSON).
INSERT INTO ops.experiment_decisions (experiment_id, logical_date, arm, model_version, decision,
                                      share_before, share_after, reasons, evidence)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
