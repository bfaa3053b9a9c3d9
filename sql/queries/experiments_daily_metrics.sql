-- Per day and arm, cohort users only: active users, dwell per user, CTR, coverage, diversity.
SELECT logical_date, arm, sum(active_users), sum(dwell_s) / nullif(sum(active_users), 0),
       sum(reads)::float8 / nullif(sum(impressions), 0), max(coverage),
       sum(diversity * active_users) / nullif(sum(active_users), 0)
FROM ops.business_metrics
WHERE experiment_id = %s AND in_cohort
GROUP BY logical_date, arm
ORDER BY logical_date, arm
