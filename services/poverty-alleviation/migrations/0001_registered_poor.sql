-- The registered-poor roster (R-ROSTER-2).
CREATE TABLE poor_household (
    household_id          uuid        PRIMARY KEY,
    -- The county's own registration number, for idempotent imports.
    source_id             text,
    county                text        NOT NULL,
    village               text        NOT NULL,
    status                integer     NOT NULL, -- PovertyStatus
    exit_year             integer,
    return_cause          integer     NOT NULL DEFAULT 0,
    dibao_registered_poor boolean     NOT NULL DEFAULT false,
    dibao_category        integer     NOT NULL DEFAULT 0,
    dibao_household_ids   text[]      NOT NULL DEFAULT '{}',
    version               bigint      NOT NULL DEFAULT 1,
    body                  bytea       NOT NULL, -- PoorHousehold: members, causes, help measures
    created_at            timestamptz NOT NULL
);
CREATE UNIQUE INDEX poor_household_by_source ON poor_household (county, source_id) WHERE source_id IS NOT NULL;
CREATE INDEX poor_household_by_village ON poor_household (village text_pattern_ops, household_id);

-- A person is registered in at most one live household.
CREATE TABLE poor_member (
    identity_number text    NOT NULL,
    household_id    uuid    NOT NULL REFERENCES poor_household,
    live            boolean NOT NULL,
    died_on         date,
    PRIMARY KEY (identity_number, household_id)
);
CREATE UNIQUE INDEX one_live_poor_household_per_person ON poor_member (identity_number) WHERE live;

-- The poverty office's view of the dibao roster, kept current by civil
-- affairs' events (R-SYNC-1). `version` is the last aggregate version
-- applied, so a replayed or older event changes nothing (R-SYNC-3).
CREATE TABLE dibao_household (
    dibao_household_id text    PRIMARY KEY,
    village            text    NOT NULL,
    programme          integer NOT NULL,
    category           integer NOT NULL,
    enrolled           boolean NOT NULL,
    version            bigint  NOT NULL
);
CREATE INDEX dibao_household_by_village ON dibao_household (village text_pattern_ops);
CREATE TABLE dibao_member (
    identity_number    text NOT NULL,
    dibao_household_id text NOT NULL REFERENCES dibao_household,
    PRIMARY KEY (identity_number, dibao_household_id)
);
CREATE INDEX dibao_member_by_household ON dibao_member (dibao_household_id);
