-- The configuration of the simulated world, changed by a later day (drift switched on).
UPDATE sim.config SET params = %(params)s
