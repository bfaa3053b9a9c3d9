-- The nightly report: day D's latest drift verdict of each kind.
SELECT kind, drifted, drift_share, n_drifted, n_columns,
       verdict->'drifted_columns', report_path
FROM ops.drift_latest
WHERE logical_date = %s
ORDER BY kind
