-- The nightly report: the latest quality gate result of each stage of day D.
SELECT stage, passed, n_checks, n_critical_failed, n_warning_failed, n_not_applicable, report_path
FROM ops.quality_latest
WHERE logical_date = %s
ORDER BY stage
