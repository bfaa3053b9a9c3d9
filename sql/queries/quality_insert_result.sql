-- Record a quality gate's verdict; returns its id.
INSERT INTO ops.quality_results (run_id, logical_date, stage, suite_version, passed, n_checks, n_critical_failed, n_warning_failed, params, runtime, report_path, pages, n_not_applicable, profile) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING result_id
