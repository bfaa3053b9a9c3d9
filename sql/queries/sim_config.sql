-- The configuration the simulated world was seeded with.
SELECT params FROM sim.config
