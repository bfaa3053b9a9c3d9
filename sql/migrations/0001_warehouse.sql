-- Warehouse: the raw domain data that the nightly pipelines read.
-- Raw landing tables carry few constraints on purpose: bad rows (unknown ids, duplicate
-- events, odd dwell) must be able to land so that the quality gate can catch them.
CREATE SCHEMA IF NOT EXISTS warehouse;

CREATE TABLE warehouse.publications (
    publication_id      integer PRIMARY KEY,
    name                text NOT NULL,
    domain              text NOT NULL,
    home_region         text NOT NULL CHECK (home_region IN ('LATAM', 'AFRICA', 'NA', 'GLOBAL')),
    language            text NOT NULL,
    trust_score         real NOT NULL CHECK (trust_score BETWEEN 0 AND 1),
    misinformation_flag boolean NOT NULL DEFAULT false
);

CREATE TABLE warehouse.articles (
    article_id     bigint PRIMARY KEY,
    publication_id integer NOT NULL REFERENCES warehouse.publications,
    category       text NOT NULL,
    subcategory    text NOT NULL,
    title          text NOT NULL,
    abstract       text NOT NULL DEFAULT '',
    url            text NOT NULL,
    language       text NOT NULL,
    published_at   timestamptz NOT NULL,
    external_id    text
);
CREATE INDEX articles_published_at_idx ON warehouse.articles (published_at);

CREATE TABLE warehouse.users (
    user_id            bigint PRIMARY KEY,
    region             text NOT NULL CHECK (region IN ('LATAM', 'AFRICA', 'NA')),
    signup_date        date NOT NULL,
    plan               text NOT NULL CHECK (plan IN ('trial', 'paid')),
    declared_interests text[] NOT NULL DEFAULT '{}',
    external_id        text
);
CREATE INDEX users_signup_date_idx ON warehouse.users (signup_date);

-- Impressions and reads, partitioned by day so that a day is replaced or read as one unit.
-- A read points at the impression it came from (impression_id); organic reads have none.
CREATE TABLE warehouse.events (
    event_id      bigint NOT NULL,
    impression_id bigint,
    user_id       bigint NOT NULL,
    article_id    bigint NOT NULL,
    event_type    text NOT NULL CHECK (event_type IN ('impression', 'read')),
    event_ts      timestamptz NOT NULL,
    position      smallint,
    surface       text NOT NULL,
    dwell_seconds real
) PARTITION BY RANGE (event_ts);

-- Creates the partition for one UTC day if it is missing; returns its name.
CREATE FUNCTION warehouse.ensure_events_partition(d date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('events_%s', to_char(d, 'YYYYMMDD'));
BEGIN
    IF to_regclass(format('warehouse.%I', part)) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE warehouse.%I PARTITION OF warehouse.events
               FOR VALUES FROM (%L) TO (%L)',
            part, (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
        EXECUTE format('CREATE INDEX ON warehouse.%I (user_id)', part);
    END IF;
    RETURN part;
END $$;
