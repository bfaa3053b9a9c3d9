-- The checksum an applied migration was recorded with.
SELECT checksum FROM ops.schema_migrations WHERE version = %s
