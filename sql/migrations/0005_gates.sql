-- Gates: quality (Great Expectations) and drift (Evidently) verdicts per day.
-- Every run appends a row (an audit trail: a re-run of a day does not erase why the first run
-- stopped); the *_latest views give the verdict the DAG and the retrain checker act on.

CREATE TABLE ops.quality_results (
    result_id         bigserial PRIMARY KEY,
    run_id            bigint REFERENCES ops.runs ON DELETE SET NULL,
    logical_date      date NOT NULL,
    stage             text NOT NULL CHECK (stage IN ('raw', 'features')),
    suite_version     text NOT NULL,
    passed            boolean NOT NULL,
    n_checks          integer NOT NULL,
    n_critical_failed integer NOT NULL,
    n_warning_failed  integer NOT NULL,
    params            jsonb NOT NULL DEFAULT '{}',   -- thresholds the suite was built with
    runtime           jsonb NOT NULL DEFAULT '{}',   -- suite parameters resolved for the day (row counts)
    report_path       text,                          -- Data Docs index of the day
    pages             jsonb NOT NULL DEFAULT '{}',   -- asset -> Data Docs page of this run
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quality_results_date_idx ON ops.quality_results (logical_date, stage, created_at);

-- One row per expectation of a run: which check, how bad, and a few failing rows or values.
CREATE TABLE ops.quality_checks (
    result_id          bigint NOT NULL REFERENCES ops.quality_results ON DELETE CASCADE,
    check_name         text NOT NULL,
    asset              text NOT NULL,
    expectation        text NOT NULL,
    column_name        text,
    severity           text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    success            boolean NOT NULL,
    unexpected_count   bigint,
    unexpected_percent double precision,
    observed           jsonb,
    expected           jsonb NOT NULL DEFAULT '{}',
    examples           jsonb NOT NULL DEFAULT '[]',
    error              text,
    PRIMARY KEY (result_id, check_name)
);
CREATE INDEX quality_checks_failed_idx ON ops.quality_checks (check_name) WHERE NOT success;

-- Drift of features, labels (target) or model scores of a day against reference days.
CREATE TABLE ops.drift_results (
    result_id       bigserial PRIMARY KEY,
    run_id          bigint REFERENCES ops.runs ON DELETE SET NULL,
    logical_date    date NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('features', 'target', 'scores')),
    reference_days  date[] NOT NULL,
    drifted         boolean NOT NULL,
    drift_share     double precision NOT NULL,   -- share of columns whose drift score crossed their threshold
    share_threshold double precision NOT NULL,   -- drifted = drift_share >= share_threshold
    n_columns       integer NOT NULL,
    n_drifted       integer NOT NULL,
    verdict         jsonb NOT NULL,              -- per column: score, method, threshold, drifted; sample sizes
    report_path     text,                        -- Evidently HTML report of this run
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX drift_results_date_idx ON ops.drift_results (logical_date, kind, created_at);

CREATE VIEW ops.quality_latest AS
SELECT DISTINCT ON (logical_date, stage) *
FROM ops.quality_results
ORDER BY logical_date, stage, created_at DESC, result_id DESC;

CREATE VIEW ops.drift_latest AS
SELECT DISTINCT ON (logical_date, kind) *
FROM ops.drift_results
ORDER BY logical_date, kind, created_at DESC, result_id DESC;
