-- Civil affairs' view of the registered-poor roster, kept current by the
-- poverty office's events (R-SYNC-1, R-SYNC-2). `version` is the last
-- aggregate version applied, so a replayed or older event changes nothing.
CREATE TABLE poverty_household (
    poor_household_id     text    PRIMARY KEY,
    village               text    NOT NULL,
    status                integer NOT NULL, -- PovertyStatus
    exit_year             integer,
    return_cause          integer NOT NULL DEFAULT 0,
    returned_on           date,
    dibao_registered_poor boolean NOT NULL DEFAULT false,
    head_name             text    NOT NULL,
    head_identity         text    NOT NULL,
    version               bigint  NOT NULL
);
CREATE INDEX poverty_household_by_village ON poverty_household (village text_pattern_ops);
CREATE TABLE poverty_member (
    identity_number   text NOT NULL,
    poor_household_id text NOT NULL REFERENCES poverty_household,
    PRIMARY KEY (identity_number, poor_household_id)
);
CREATE INDEX poverty_member_by_household ON poverty_member (poor_household_id);
