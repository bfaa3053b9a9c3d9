-- An alert for on-call: the failed task, its logical date, try number and error.
INSERT INTO ops.alerts (source, task, logical_date, try_number, error) VALUES (%s, %s, %s, %s, %s)
