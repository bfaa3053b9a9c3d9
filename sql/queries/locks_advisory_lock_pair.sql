-- Take a session advisory lock on a (class, object) key in exclusive mode, waiting for it.
SELECT pg_advisory_lock(%s, %s)
