-- Model decisions: every promotion attempt, rollback and manual move of the champion alias,
-- with the evidence it was based on.
CREATE TABLE ops.model_decisions (
    decision_id        bigserial PRIMARY KEY,
    decided_at         timestamptz NOT NULL DEFAULT now(),
    logical_date       date,
    kind               text NOT NULL CHECK (kind IN ('promotion', 'rollback', 'manual')),
    challenger_version text,
    champion_version   text,
    promoted           boolean NOT NULL,
    reasons            jsonb NOT NULL DEFAULT '[]',
    evidence           jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX model_decisions_date_idx ON ops.model_decisions (logical_date);
