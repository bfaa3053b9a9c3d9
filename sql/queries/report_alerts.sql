-- The nightly report: the alerts raised for day D.
SELECT raised_at, source, task, error FROM ops.alerts WHERE logical_date = %s ORDER BY alert_id
