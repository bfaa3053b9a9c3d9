-- Record a day's retrain decision with its reasons and evidence.
INSERT INTO ops.retrain_decisions (logical_date, decided_at, retrain, mode, champion_version, reasons, evidence) VALUES (%s, %s, %s, %s, %s, %s, %s)
