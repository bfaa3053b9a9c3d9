-- Record a model decision (promotion, manual move, rollback) with its evidence.
INSERT INTO ops.model_decisions (logical_date, kind, challenger_version, champion_version, promoted, reasons, evidence) VALUES (%s, %s, %s, %s, %s, %s, %s)
