-- End an experiment the promoter/demoter decided (promoted or every challenger demoted).
UPDATE ops.experiments SET status = %s, stopped_at = now(), stopped_on = %s, stop_reason = %s
WHERE experiment_id = %s
