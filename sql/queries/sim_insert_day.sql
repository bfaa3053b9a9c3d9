-- What day D was generated with (drift active, injected faults) and how much it holds.
INSERT INTO sim.days (day, drifted, faults, n_articles, n_events)
VALUES (%(day)s, %(drifted)s, %(faults)s, %(n_articles)s, %(n_events)s)
