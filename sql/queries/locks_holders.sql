-- Who holds the advisory lock on a (class, object) key now: pid, mode and application name.
SELECT l.pid, l.mode, a.application_name
FROM pg_locks l LEFT JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::int::oid AND l.objid = %s::int::oid
  AND l.objsubid = 2
ORDER BY l.pid
