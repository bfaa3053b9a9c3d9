-- Simulator truth. Only the simulator and offline evaluation against the oracle read this
-- schema; pipeline stages never do.
CREATE SCHEMA IF NOT EXISTS sim;

CREATE TABLE sim.config (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    params     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sim.publications (
    publication_id integer PRIMARY KEY,
    quality        real NOT NULL,
    output_weight  real NOT NULL
);

CREATE TABLE sim.articles (
    article_id bigint PRIMARY KEY,
    quality    real NOT NULL
);

CREATE TABLE sim.users (
    user_id    bigint PRIMARY KEY,
    activity   real NOT NULL
);

-- Sparse latent tastes: the share of a user's interest in a category.
CREATE TABLE sim.user_taste (
    user_id  bigint NOT NULL,
    category text NOT NULL,
    weight   real NOT NULL,
    PRIMARY KEY (user_id, category)
);

CREATE TABLE sim.user_publication_affinity (
    user_id        bigint NOT NULL,
    publication_id integer NOT NULL,
    affinity       real NOT NULL,
    PRIMARY KEY (user_id, publication_id)
);

CREATE TABLE sim.region_category_bias (
    region   text NOT NULL,
    category text NOT NULL,
    bias     real NOT NULL,
    PRIMARY KEY (region, category)
);

-- For each impression: probability that the reader finds it worth reading (no position
-- effect) and the expected dwell if read. The oracle ranks by relevance * expected dwell.
CREATE TABLE sim.impression_truth (
    event_id       bigint NOT NULL,
    day            date NOT NULL,
    relevance      real NOT NULL,
    expected_dwell real NOT NULL
);
CREATE INDEX impression_truth_day_idx ON sim.impression_truth (day);

-- What each simulated day was generated with (drift active, injected faults).
CREATE TABLE sim.days (
    day          date PRIMARY KEY,
    drifted      boolean NOT NULL,
    faults       text[] NOT NULL DEFAULT '{}',
    n_articles   integer NOT NULL,
    n_events     bigint NOT NULL,
    generated_at timestamptz NOT NULL DEFAULT now()
);
