-- The last promotion-gate decision recorded for a model version.
SELECT promoted, champion_version, reasons, evidence FROM ops.model_decisions WHERE challenger_version = %s AND kind = 'promotion' ORDER BY decision_id DESC LIMIT 1
