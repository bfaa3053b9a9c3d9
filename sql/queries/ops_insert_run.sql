-- A stage run starts: its 'running' row; returns the run id.
INSERT INTO ops.runs (stage, logical_date, status) VALUES (%s, %s, 'running') RETURNING run_id
