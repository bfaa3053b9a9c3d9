-- Backend pids of the reader's database sessions.
SELECT pid FROM pg_stat_activity WHERE application_name = 'newsrec-reader'
