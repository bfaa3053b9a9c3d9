-- Day D's business metric rows, replaced by a re-run.
DELETE FROM ops.business_metrics WHERE logical_date = %s
