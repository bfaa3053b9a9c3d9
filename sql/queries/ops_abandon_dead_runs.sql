-- Fail the 'running' rows whose process is gone: only for those does a transaction-level
-- try-lock on the row's key succeed (released at commit). Parameters: the error text and
-- the lock class; the run id key is taken modulo 2147483647, like the process's own lock.
UPDATE ops.runs SET status = 'failed', finished_at = now(),
       details = details || jsonb_build_object('error', %s::text)
WHERE status = 'running' AND pg_try_advisory_xact_lock(%s, (run_id %% 2147483647)::int)
