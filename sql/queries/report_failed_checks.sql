-- The nightly report: the failed checks of day D's latest quality results.
SELECT q.stage, c.severity, c.check_name, c.unexpected_count
FROM ops.quality_checks c
JOIN ops.quality_latest q USING (result_id)
WHERE q.logical_date = %s AND NOT c.success
ORDER BY c.severity, c.check_name
