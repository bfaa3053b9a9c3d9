-- The configuration of a fresh simulated world (one row).
INSERT INTO sim.config (params) VALUES (%(params)s)
