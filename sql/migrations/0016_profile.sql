-- The data profile: what the warehouse's source really has (dwell or clicks only, regions,
-- publications with trust scores, publish times, slate positions in display order, surfaces).
-- One row at most; no row means the full profile (everything present), so a warehouse written
-- before this migration behaves as before. Set by the simulator, the importers and
-- `newsrec warehouse profile`; read by the gates (checks that cannot apply are "not applicable").
CREATE TABLE warehouse.profile (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    source          text NOT NULL,
    dwell           boolean NOT NULL,
    regions         boolean NOT NULL,
    publications    boolean NOT NULL,
    publish_times   boolean NOT NULL,
    positions_known boolean NOT NULL,
    surfaces        boolean NOT NULL,
    set_by          text NOT NULL,
    set_at          timestamptz NOT NULL DEFAULT now()
);

-- Quality checks that cannot apply under the profile are neither passed nor failed: success is
-- NULL (so `NOT success` still lists exactly the failures) and status says so in words. A note
-- says why (e.g. "the source has no dwell", or "not enough history" on a band check that only
-- warned because the warehouse is new).
ALTER TABLE ops.quality_checks
    ALTER COLUMN success DROP NOT NULL,
    ADD COLUMN note text,
    ADD COLUMN status text GENERATED ALWAYS AS (
        CASE WHEN success IS NULL THEN 'not applicable' WHEN success THEN 'passed' ELSE 'failed' END
    ) STORED;

ALTER TABLE ops.quality_results
    ADD COLUMN n_not_applicable integer NOT NULL DEFAULT 0,  -- not counted in n_checks
    ADD COLUMN profile jsonb NOT NULL DEFAULT '{}';          -- the data profile the suite ran under

-- The view's `*` was expanded when it was made: re-create it so it shows the new columns.
CREATE OR REPLACE VIEW ops.quality_latest AS
SELECT DISTINCT ON (logical_date, stage) *
FROM ops.quality_results
ORDER BY logical_date, stage, created_at DESC, result_id DESC;
