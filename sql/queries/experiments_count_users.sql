-- The warehouse's users: what a cohort size is a share of.
SELECT count(*) FROM warehouse.users
