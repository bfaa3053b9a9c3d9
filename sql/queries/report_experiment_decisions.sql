-- The nightly report: the promoter/demoter's decisions of day D with their evidence.
SELECT e.name, d.arm, d.model_version, d.decision, d.share_before, d.share_after,
       round((d.evidence->>'mean_challenger')::numeric, 2), round((d.evidence->>'mean_champion')::numeric, 2),
       round((d.evidence->>'diff')::numeric, 2), d.evidence->'ci', d.evidence->>'days',
       d.evidence->>'n_challenger', d.evidence->>'n_champion', d.reasons
FROM ops.experiment_decisions d JOIN ops.experiments e USING (experiment_id)
WHERE d.logical_date = %s
ORDER BY d.decision_id
