-- The retrain checker's decision for each logical date, with every reason it found.
CREATE TABLE ops.retrain_decisions (
    decision_id      bigserial PRIMARY KEY,
    logical_date     date NOT NULL,
    decided_at       timestamptz NOT NULL DEFAULT now(),
    retrain          boolean NOT NULL,
    mode             text NOT NULL CHECK (mode IN ('full', 'warm', 'none')),
    champion_version text,
    reasons          jsonb NOT NULL DEFAULT '[]',
    evidence         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX retrain_decisions_date_idx ON ops.retrain_decisions (logical_date);
