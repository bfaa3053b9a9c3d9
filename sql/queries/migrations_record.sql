-- Record a migration as applied.
INSERT INTO ops.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)
