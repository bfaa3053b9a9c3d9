-- Store the data profile of the warehouse, replacing the previous one.
INSERT INTO warehouse.profile
    (singleton, source, dwell, regions, publications, publish_times, positions_known, surfaces, set_by, set_at)
VALUES (true, %(source)s, %(dwell)s, %(regions)s, %(publications)s, %(publish_times)s, %(positions_known)s,
        %(surfaces)s, %(set_by)s, now())
ON CONFLICT (singleton) DO UPDATE SET
    source = EXCLUDED.source, dwell = EXCLUDED.dwell, regions = EXCLUDED.regions,
    publications = EXCLUDED.publications, publish_times = EXCLUDED.publish_times,
    positions_known = EXCLUDED.positions_known, surfaces = EXCLUDED.surfaces,
    set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at
RETURNING set_at
