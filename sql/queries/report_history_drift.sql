-- The nightly report's charts: the latest feature and target drift share per night of the window.
SELECT logical_date, kind, drift_share
FROM ops.drift_latest
WHERE kind IN ('features', 'target') AND logical_date BETWEEN %(start)s AND %(day)s
ORDER BY logical_date, kind
