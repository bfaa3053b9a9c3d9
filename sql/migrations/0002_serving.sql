-- Serving: published recommendation batches, the live pointer, and API keys.
CREATE SCHEMA IF NOT EXISTS serving;

CREATE TABLE serving.batches (
    batch_id      bigserial PRIMARY KEY,
    data_date     date NOT NULL,
    model_version text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'writing' CHECK (status IN ('writing', 'complete', 'failed')),
    n_users       integer,
    n_rows        bigint
);

CREATE TABLE serving.recommendations (
    batch_id   bigint NOT NULL REFERENCES serving.batches ON DELETE CASCADE,
    user_id    bigint NOT NULL,
    rank       smallint NOT NULL CHECK (rank BETWEEN 1 AND 100),
    article_id bigint NOT NULL,
    score      real NOT NULL,
    reason     text NOT NULL,
    PRIMARY KEY (batch_id, user_id, rank)
);

CREATE TABLE serving.fallback_recommendations (
    batch_id   bigint NOT NULL REFERENCES serving.batches ON DELETE CASCADE,
    region     text NOT NULL,
    rank       smallint NOT NULL,
    article_id bigint NOT NULL,
    score      real NOT NULL,
    reason     text NOT NULL,
    PRIMARY KEY (batch_id, region, rank)
);

-- Exactly one row: which complete batch readers see. Switched in one transaction.
CREATE TABLE serving.live (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    batch_id    bigint REFERENCES serving.batches,
    switched_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO serving.live (singleton, batch_id) VALUES (true, NULL);

CREATE TABLE serving.api_keys (
    key_id     bigserial PRIMARY KEY,
    name       text NOT NULL,
    key_hash   text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
