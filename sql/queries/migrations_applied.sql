-- The migrations already applied, oldest first.
SELECT version FROM ops.schema_migrations ORDER BY version
