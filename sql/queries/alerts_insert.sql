-- An alert for on-call: the failed task, its run, logical date, try number and error. The same
-- (source, run, task, try) raised again only counts; "raised" = 1 tells the caller to send.
INSERT INTO ops.alerts (source, run_id, task, logical_date, try_number, kind, error)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (source, run_id, task, try_number) WHERE run_id IS NOT NULL
DO UPDATE SET raised = ops.alerts.raised + 1
RETURNING alert_id, raised
