-- The running process's session advisory lock on its run row: (lock class, run id key).
SELECT pg_advisory_lock(%s, %s)
