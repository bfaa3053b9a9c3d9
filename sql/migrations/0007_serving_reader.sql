-- Serving, part 2: what publish and the REST reader need.
--
-- 1. serving.recommendations becomes LIST-partitioned by batch_id. A batch is written into
--    its own table, indexed, then attached as a partition; an old batch is detached and
--    dropped. At seed scale a batch is ~5M rows: dropping a table instead of deleting rows
--    every night avoids bloat and vacuum work on the table the reader hits.
-- 2. Serving rows carry the article's title, url, category and publication name (and the
--    user's region) so the reader never reads the warehouse.
-- 3. A nullable experiment arm per recommendation row.
-- 4. Batches get 'retired' (rows dropped, metadata kept) and the time they first went live.
-- 5. A read-only login role for the reader.

ALTER TABLE serving.batches DROP CONSTRAINT batches_status_check;
ALTER TABLE serving.batches ADD CONSTRAINT batches_status_check
    CHECK (status IN ('writing', 'complete', 'failed', 'retired'));
ALTER TABLE serving.batches ADD COLUMN published_at timestamptz;
-- Which complete batch is the newest, and which batches still hold rows.
CREATE INDEX batches_status_idx ON serving.batches (status, batch_id);

ALTER TABLE serving.recommendations RENAME TO recommendations_v1;
ALTER INDEX serving.recommendations_pkey RENAME TO recommendations_v1_pkey;

CREATE TABLE serving.recommendations (
    batch_id    bigint NOT NULL REFERENCES serving.batches ON DELETE CASCADE,
    user_id     bigint NOT NULL,
    rank        smallint NOT NULL CHECK (rank BETWEEN 1 AND 100),
    article_id  bigint NOT NULL,
    score       real NOT NULL,
    reason      text NOT NULL,
    title       text NOT NULL,
    url         text NOT NULL,
    category    text NOT NULL,
    publication text NOT NULL,
    region      text,
    arm         text,
    PRIMARY KEY (batch_id, user_id, rank)
) PARTITION BY LIST (batch_id);

-- Carry over rows written before this migration (normally none), one partition per batch.
DO $$
DECLARE
    b bigint;
BEGIN
    FOR b IN SELECT DISTINCT batch_id FROM serving.recommendations_v1 LOOP
        EXECUTE format(
            'CREATE TABLE serving.%I PARTITION OF serving.recommendations FOR VALUES IN (%s)',
            'recommendations_b' || b, b);
    END LOOP;
    INSERT INTO serving.recommendations
        (batch_id, user_id, rank, article_id, score, reason, title, url, category, publication, region)
    SELECT r.batch_id, r.user_id, r.rank, r.article_id, r.score, r.reason,
           coalesce(a.title, ''), coalesce(a.url, ''), coalesce(a.category, ''), coalesce(p.name, ''),
           u.region
    FROM serving.recommendations_v1 r
    LEFT JOIN warehouse.articles a ON a.article_id = r.article_id
    LEFT JOIN warehouse.publications p ON p.publication_id = a.publication_id
    LEFT JOIN warehouse.users u ON u.user_id = r.user_id;
END $$;
DROP TABLE serving.recommendations_v1;

ALTER TABLE serving.fallback_recommendations
    ADD COLUMN title text NOT NULL DEFAULT '',
    ADD COLUMN url text NOT NULL DEFAULT '',
    ADD COLUMN category text NOT NULL DEFAULT '',
    ADD COLUMN publication text NOT NULL DEFAULT '';
ALTER TABLE serving.fallback_recommendations
    ALTER COLUMN title DROP DEFAULT,
    ALTER COLUMN url DROP DEFAULT,
    ALTER COLUMN category DROP DEFAULT,
    ALTER COLUMN publication DROP DEFAULT;

-- The first characters of a key, so that `newsrec reader keys list` can tell keys apart
-- without storing anything that authenticates.
ALTER TABLE serving.api_keys ADD COLUMN key_prefix text;

-- The reader's role: it logs in, reads serving and nothing else. Roles are per server, so
-- it may exist already (another database on the same server). Creating it needs CREATEROLE;
-- without that the migration goes on and tells the operator what to run.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsrec_reader') THEN
        IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            BEGIN
                CREATE ROLE newsrec_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
                ALTER ROLE newsrec_reader SET default_transaction_read_only = on;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently by a migration of another database on this server
            END;
        ELSE
            RAISE NOTICE 'role newsrec_reader is missing and % cannot create it: create it, then grant as in 0007',
                current_user;
            RETURN;
        END IF;
    END IF;
    GRANT USAGE ON SCHEMA serving TO newsrec_reader;
    GRANT SELECT ON serving.batches, serving.recommendations, serving.fallback_recommendations,
        serving.live, serving.api_keys TO newsrec_reader;
END $$;
