-- Whether the migrations bookkeeping table exists yet.
SELECT to_regclass('ops.schema_migrations')
