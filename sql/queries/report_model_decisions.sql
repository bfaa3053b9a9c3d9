-- The nightly report: day D's promotion-gate decisions.
SELECT kind, challenger_version, champion_version, promoted, reasons,
       (evidence->>'challenger_ndcg@10')::float8, evidence->'comparison'
FROM ops.model_decisions
WHERE logical_date = %s
ORDER BY decision_id
