-- Whether the warehouse has a profile table (a warehouse migrated before it had none).
SELECT to_regclass('warehouse.profile') IS NOT NULL
