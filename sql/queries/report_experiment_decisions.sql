-- The nightly report: the promoter/demoter's decisions of day D with their evidence.
SELECT e.name, d.arm, d.model_version, d.decision, d.share_before, d.share_after,
       (d.evidence->>'mean_challenger')::float8, (d.evidence->>'mean_champion')::float8,
       (d.evidence->>'diff')::float8, d.evidence->'ci', (d.evidence->>'days')::int,
       (d.evidence->>'n_challenger')::int, (d.evidence->>'n_champion')::int, d.reasons
FROM ops.experiment_decisions d JOIN ops.experiments e USING (experiment_id)
WHERE d.logical_date = %s
ORDER BY d.decision_id
