-- Fault injection (tests only): the server ends this very session, as a restart or a pooler would.
SELECT pg_terminate_backend(pg_backend_pid())
