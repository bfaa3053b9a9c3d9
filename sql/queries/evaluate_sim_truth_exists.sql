-- Whether the simulator's truth table exists (it does only on simulated data).
SELECT to_regclass('sim.impression_truth')
