-- A manual promotion is an explicit override of the promotion gate: its own kind, and never
-- without the operator's reason (evidence->>'override_reason'). 'manual' stays for old rows.
ALTER TABLE ops.model_decisions DROP CONSTRAINT model_decisions_kind_check;
ALTER TABLE ops.model_decisions ADD CONSTRAINT model_decisions_kind_check
    CHECK (kind IN ('promotion', 'rollback', 'manual', 'experiment', 'override'));
ALTER TABLE ops.model_decisions ADD CONSTRAINT model_decisions_override_reason_check
    CHECK (kind <> 'override' OR length(btrim(coalesce(evidence->>'override_reason', ''))) > 0);
