-- One migration run at a time (a transaction-level advisory lock).
SELECT pg_advisory_xact_lock(%s)
