-- The stored data profile of the warehouse (at most one row; none means the full profile).
SELECT source, dwell, regions, publications, publish_times, positions_known, surfaces, set_by, set_at
FROM warehouse.profile
