-- Back to no lock_timeout for this session once the lock is held.
SELECT set_config('lock_timeout', '0', false)
