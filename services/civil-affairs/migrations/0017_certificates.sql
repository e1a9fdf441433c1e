-- The household's certificate (低保证, 特困供养证; R-PROC-1): one current
-- per household, a new one whenever its category, amount or members
-- change, withdrawn at exit; the earlier ones kept.
CREATE TABLE certificate (
    number        text        PRIMARY KEY,
    household_id  uuid        NOT NULL REFERENCES household,
    programme     integer     NOT NULL,
    category      integer     NOT NULL,
    amount_fen    bigint      NOT NULL,
    members       integer     NOT NULL,
    issued_on     date        NOT NULL,
    issued_at     timestamptz NOT NULL,
    reason        text        NOT NULL,
    superseded_on date
);
CREATE UNIQUE INDEX one_current_certificate ON certificate (household_id) WHERE superseded_on IS NULL;
CREATE INDEX certificate_by_household ON certificate (household_id, issued_at);

CREATE TABLE certificate_counter (
    county text    NOT NULL,
    kind   text    NOT NULL,
    year   integer NOT NULL,
    last   bigint  NOT NULL,
    PRIMARY KEY (county, kind, year)
);
