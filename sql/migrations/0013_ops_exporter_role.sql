-- A read-only login role for the ops exporter (`newsrec ops exporter`,
-- pipelines/monitoring/ops_exporter.py): it reads the nightly's runs, the drift verdicts and
-- the live batch for Prometheus, and nothing else (not the run details' neighbours in ops,
-- not the warehouse, not the recommendations). Created like newsrec_reader in 0007: roles are
-- per server, so it may exist already; without CREATEROLE the migration goes on and says what
-- to run.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsrec_ops_exporter') THEN
        IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            BEGIN
                CREATE ROLE newsrec_ops_exporter LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
                ALTER ROLE newsrec_ops_exporter SET default_transaction_read_only = on;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently by a migration of another database on this server
            END;
        ELSE
            RAISE NOTICE 'role newsrec_ops_exporter is missing and % cannot create it: create it, then grant as in 0013',
                current_user;
            RETURN;
        END IF;
    END IF;
    GRANT USAGE ON SCHEMA ops, serving TO newsrec_ops_exporter;
    GRANT SELECT ON ops.runs, ops.drift_results, ops.drift_latest, serving.batches, serving.live
        TO newsrec_ops_exporter;
END $$;
