-- Set this session's lock_timeout (e.g. '600000ms') while waiting for a lock.
SELECT set_config('lock_timeout', %s, false)
