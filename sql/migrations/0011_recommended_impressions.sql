-- Impressions that showed a published list (the closed loop) say which batch, experiment arm
-- and model produced it, so the nightly business metric needs no batch that may be retired
-- by then. NULL on organic events (the old logging policy's slates) and on loaded data.
-- Recommended impressions and their reads also carry surface = 'recs'.
ALTER TABLE warehouse.events
    ADD COLUMN batch_id bigint,
    ADD COLUMN arm text,
    ADD COLUMN model_version text;
