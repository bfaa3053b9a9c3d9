-- A stage run ends: its status, end time and details (JSON).
UPDATE ops.runs SET status = %s, finished_at = now(), details = %s WHERE run_id = %s
