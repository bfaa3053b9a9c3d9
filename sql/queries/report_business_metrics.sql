-- The nightly report: day D's business metric per arm and cohort (all regions).
SELECT m.arm, m.in_cohort, string_agg(DISTINCT m.model_version, ', '), sum(m.active_users),
       sum(m.dwell_s) / nullif(sum(m.active_users), 0),
       sum(m.reads)::float8 / nullif(sum(m.impressions), 0),
       max(m.coverage),
       sum(m.diversity * m.active_users) / nullif(sum(m.active_users), 0), e.name
FROM ops.business_metrics m LEFT JOIN ops.experiments e USING (experiment_id)
WHERE m.logical_date = %s
GROUP BY m.arm, m.in_cohort, e.name
ORDER BY m.in_cohort DESC, m.arm
