-- The nightly report's charts: dwell per active user per arm and night of the window (all regions;
-- during an experiment the champion's users outside the cohort are a series of their own).
SELECT logical_date,
       CASE WHEN in_cohort OR experiment_id IS NULL THEN arm ELSE arm || ' (outside cohort)' END,
       sum(dwell_s) / nullif(sum(active_users), 0)
FROM ops.business_metrics
WHERE logical_date BETWEEN %(start)s AND %(day)s
GROUP BY 1, 2
ORDER BY 1, 2
