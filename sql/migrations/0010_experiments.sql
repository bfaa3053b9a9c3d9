-- Online experiments: arms with traffic shares inside an optional pilot cohort, the nightly
-- business metric per arm, and the promoter/demoter's decisions with their evidence.
--
-- Assignment is not stored per user: it is a stable hash of (user id, salt) computed where
-- it is needed (pipelines/experiments/plan.py), so only the definition lives here.

CREATE TABLE ops.experiments (
    experiment_id  bigserial PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    salt           text NOT NULL,
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'stopped', 'promoted', 'demoted')),
    -- The cohort: users whose cohort hash falls below cohort_share. cohort_size is what was
    -- asked for (NULL = every user); cohort_share = cohort_size / users known at creation.
    cohort_size    integer CHECK (cohort_size IS NULL OR cohort_size > 0),
    cohort_share   double precision NOT NULL DEFAULT 1 CHECK (cohort_share > 0 AND cohort_share <= 1),
    users_at_start bigint,
    started_on     date,            -- first logical date whose publish serves it (NULL = the next one)
    created_at     timestamptz NOT NULL DEFAULT now(),
    stopped_at     timestamptz,
    stopped_on     date,            -- logical date of the run (or NULL for a stop by hand) that ended it
    stop_reason    text,
    config         jsonb NOT NULL DEFAULT '{}'   -- test parameters and share steps it was created with
);
-- At most one running experiment: arms of two experiments would compete for the same users.
CREATE UNIQUE INDEX experiments_one_running ON ops.experiments ((true)) WHERE status = 'running';

CREATE TABLE ops.experiment_arms (
    experiment_id  bigint NOT NULL REFERENCES ops.experiments ON DELETE CASCADE,
    arm            text NOT NULL,
    position       smallint NOT NULL,       -- layout order of the arms on the assignment hash
    kind           text NOT NULL CHECK (kind IN ('champion', 'challenger', 'popularity')),
    model_version  text,                     -- registry version of a challenger; NULL otherwise
    share          double precision NOT NULL CHECK (share >= 0 AND share <= 1),
    step           smallint NOT NULL DEFAULT 0,   -- how many share steps the arm has climbed
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'demoted', 'promoted', 'ended')),
    since          date,                     -- first day whose events count as evidence at this share
    PRIMARY KEY (experiment_id, arm),
    UNIQUE (experiment_id, position)
);

-- Every share an arm had, from which logical date's publish on.
CREATE TABLE ops.experiment_share_history (
    experiment_id  bigint NOT NULL REFERENCES ops.experiments ON DELETE CASCADE,
    arm            text NOT NULL,
    effective_from date,                     -- publish of this logical date on (NULL = from the start)
    share          double precision NOT NULL,
    reason         text NOT NULL,
    changed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX experiment_share_history_idx ON ops.experiment_share_history (experiment_id, changed_at);

-- The business metric of day D (events of D, which answered the lists published the night
-- before), per arm, region and cohort. Re-running D replaces D's rows.
CREATE TABLE ops.business_metrics (
    logical_date       date NOT NULL,
    experiment_id      bigint,               -- the experiment running on D, if any
    arm                text NOT NULL,        -- 'champion' outside experiments
    region             text NOT NULL,
    in_cohort          boolean NOT NULL,
    model_version      text,                 -- the model that produced most of the arm's lists
    active_users       integer NOT NULL,     -- users shown their list at least once on D
    impressions        bigint NOT NULL,      -- recommended impressions
    reads              bigint NOT NULL,
    dwell_s            double precision NOT NULL,
    dwell_per_user_s   double precision,     -- dwell from recommended impressions per active user-day
    ctr                double precision,
    coverage           double precision,     -- distinct recommended articles shown / articles of the window
    diversity          double precision,     -- mean distinct categories in a user's shown list
    computed_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX business_metrics_date_idx ON ops.business_metrics (logical_date);

-- One row per exposed user and day of a running experiment: what the statistical test resamples.
CREATE TABLE ops.experiment_user_days (
    experiment_id  bigint NOT NULL REFERENCES ops.experiments ON DELETE CASCADE,
    logical_date   date NOT NULL,
    user_id        bigint NOT NULL,
    arm            text NOT NULL,
    model_version  text,
    region         text NOT NULL,
    impressions    integer NOT NULL,
    reads          integer NOT NULL,
    dwell_s        double precision NOT NULL,
    PRIMARY KEY (experiment_id, logical_date, user_id, arm)
);

-- The promoter/demoter's verdict per experiment, arm and night, with its evidence.
CREATE TABLE ops.experiment_decisions (
    decision_id    bigserial PRIMARY KEY,
    experiment_id  bigint NOT NULL REFERENCES ops.experiments ON DELETE CASCADE,
    logical_date   date NOT NULL,
    arm            text NOT NULL,
    model_version  text,
    decision       text NOT NULL CHECK (decision IN ('keep', 'step', 'promote', 'demote', 'refused')),
    share_before   double precision,
    share_after    double precision,
    reasons        jsonb NOT NULL DEFAULT '[]',
    evidence       jsonb NOT NULL DEFAULT '{}',   -- means, difference, interval, users, days
    decided_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (experiment_id, logical_date, arm)
);

-- A champion moved by an experiment goes through the same gate and the same log.
ALTER TABLE ops.model_decisions DROP CONSTRAINT model_decisions_kind_check;
ALTER TABLE ops.model_decisions ADD CONSTRAINT model_decisions_kind_check
    CHECK (kind IN ('promotion', 'rollback', 'manual', 'experiment'));
