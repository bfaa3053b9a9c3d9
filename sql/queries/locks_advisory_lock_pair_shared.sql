-- Take a session advisory lock on a (class, object) key in shared mode, waiting for it.
SELECT pg_advisory_lock_shared(%s, %s)
