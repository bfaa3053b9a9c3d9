-- One message per (run, task, try): a failing gate raises its own alert and then Airflow's
-- failure callback raises the same failure again; the second finds the row and sends nothing.
-- run_id: the Airflow run id, a run-day invocation's id, or an experiment's day. NULL on rows
-- written before this migration (never deduplicated).
ALTER TABLE ops.alerts ADD COLUMN run_id text;
-- failure (a task), gate (a gate's own notice), decision (the experiment promoter)
ALTER TABLE ops.alerts ADD COLUMN kind text NOT NULL DEFAULT 'failure';
-- how many times this (run, task, try) was raised; the message went out on the first
ALTER TABLE ops.alerts ADD COLUMN raised integer NOT NULL DEFAULT 1;
-- what became of the message: off (no NEWSREC_ALERT_URL), sent, or failed: <why>
ALTER TABLE ops.alerts ADD COLUMN notified text;
CREATE UNIQUE INDEX alerts_once_idx ON ops.alerts (source, run_id, task, try_number) WHERE run_id IS NOT NULL;
