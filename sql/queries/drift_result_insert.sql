-- One drift verdict into ops.drift_results (ops.drift_latest shows the newest per day and
-- kind); returns its result_id. psycopg2 named placeholders: run_id, logical_date, kind,
-- reference_days (a list of dates), drifted, drift_share, share_threshold, n_columns,
-- n_drifted, verdict (JSON text), report_path.
INSERT INTO ops.drift_results (run_id, logical_date, kind, reference_days, drifted, drift_share,
                               share_threshold, n_columns, n_drifted, verdict, report_path)
VALUES (%(run_id)s, %(logical_date)s, %(kind)s, %(reference_days)s::date[], %(drifted)s, %(drift_share)s,
        %(share_threshold)s, %(n_columns)s, %(n_drifted)s, %(verdict)s, %(report_path)s)
RETURNING result_id
