-- Whether the sim schema is migrated: the config table, or NULL.
SELECT to_regclass('sim.config')
