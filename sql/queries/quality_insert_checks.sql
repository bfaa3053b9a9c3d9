-- Record the outcome of every check of a quality gate (execute_values fills VALUES); success is
-- NULL for a check that is not applicable under the data profile.
INSERT INTO ops.quality_checks (result_id, check_name, asset, expectation, column_name, severity, success, unexpected_count, unexpected_percent, observed, expected, examples, error, note) VALUES %s
