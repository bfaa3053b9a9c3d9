-- Examination propensity per slate position, estimated from the logged impressions themselves
-- (pipelines/model/propensity.py: a position-based click model fitted by EM on the impressions
-- of the days before and including logical_date), never from the simulator's truth. One set of
-- rows per day (re-estimating a day replaces its rows). Position 0 has propensity 1 by
-- definition: the others are relative to the top of the slate.
CREATE TABLE ops.position_propensity (
    logical_date  date NOT NULL,
    position      smallint NOT NULL CHECK (position >= 0),
    propensity    real NOT NULL CHECK (propensity > 0 AND propensity <= 1),
    impressions   bigint NOT NULL,     -- impressions at this position that the fit read
    clicks        bigint NOT NULL,
    method        text NOT NULL,       -- e.g. 'pbm-em'
    first_day     date NOT NULL,       -- the window of days the fit read
    last_day      date NOT NULL,
    details       jsonb NOT NULL DEFAULT '{}',  -- iterations, articles, which impressions were used
    estimated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (logical_date, position)
);
