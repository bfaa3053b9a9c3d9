-- What became of an alert's message: off, sent, or failed: <why>.
UPDATE ops.alerts SET notified = %s WHERE alert_id = %s
