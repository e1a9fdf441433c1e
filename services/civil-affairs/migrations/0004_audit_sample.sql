-- Each sample drawn for checks, with everything needed to draw it again (R-AUD-1).
CREATE TABLE audit_sample (
    sample_id     uuid        PRIMARY KEY,
    county        text        NOT NULL,
    seed          bigint      NOT NULL, -- the u64 seed, bit for bit
    percent       integer     NOT NULL,
    full_villages text[]      NOT NULL,
    new_since     date        NOT NULL,
    household_ids uuid[]      NOT NULL,
    drawn_at      timestamptz NOT NULL,
    drawn_by      text        NOT NULL
);
CREATE INDEX audit_sample_by_county ON audit_sample (county, drawn_at DESC);
