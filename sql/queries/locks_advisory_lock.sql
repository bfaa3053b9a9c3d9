-- Take a session advisory lock on one key (publishing, nightly runs), waiting for it.
SELECT pg_advisory_lock(%s)
