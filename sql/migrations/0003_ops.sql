-- Ops: what ran, with which outcome. Later stages add their own result tables.
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE ops.runs (
    run_id       bigserial PRIMARY KEY,
    stage        text NOT NULL,
    logical_date date,
    status       text NOT NULL CHECK (status IN ('running', 'success', 'failed', 'skipped')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_stage_date_idx ON ops.runs (stage, logical_date);
