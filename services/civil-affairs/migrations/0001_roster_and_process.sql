-- County policy, append-only: the row in force for a month is the latest
-- saved with the latest effective_from not after it (R-ELIG-4).
CREATE TABLE county_policy (
    id                 bigserial PRIMARY KEY,
    county             text        NOT NULL,
    year               integer     NOT NULL,
    effective_from     date        NOT NULL,
    dibao_standard_fen bigint      NOT NULL,
    body               bytea       NOT NULL, -- dibao.civil_affairs.v1.CountyPolicy as saved
    saved_at           timestamptz NOT NULL,
    saved_by           text        NOT NULL,
    saved_by_role      integer     NOT NULL
);
CREATE INDEX county_policy_in_force ON county_policy (county, effective_from DESC, id DESC);

CREATE TABLE household (
    household_id       uuid        PRIMARY KEY,
    county             text        NOT NULL,
    village            text        NOT NULL,
    status             integer     NOT NULL, -- HouseholdStatus
    programme          integer     NOT NULL,
    category           integer     NOT NULL,
    monthly_amount_fen bigint      NOT NULL DEFAULT 0,
    enrolled_on        date,
    version            bigint      NOT NULL DEFAULT 1,
    body               bytea       NOT NULL, -- dibao.civil_affairs.v1.Household (members, health, work ability)
    income             bytea       NOT NULL, -- dibao.civil_affairs.v1.AssessHouseholdRequest (income lines, supporters)
    created_at         timestamptz NOT NULL
);
CREATE INDEX household_by_county ON household (county, status);

-- A person is in at most one live household: spouses and minor children
-- are never split off into another (R-ROSTER-4), nobody is enrolled twice.
CREATE TABLE household_member (
    identity_number text    NOT NULL,
    household_id    uuid    NOT NULL REFERENCES household,
    live            boolean NOT NULL,
    PRIMARY KEY (identity_number, household_id)
);
CREATE UNIQUE INDEX one_live_household_per_person ON household_member (identity_number) WHERE live;

CREATE TABLE application (
    application_id         uuid        PRIMARY KEY,
    household_id           uuid        NOT NULL REFERENCES household,
    next_step              integer     NOT NULL, -- ProcessStep
    status                 text        NOT NULL CHECK (status IN ('open', 'refused', 'enrolled')),
    notice_started_at      timestamptz,
    verification_report_id text,
    created_at             timestamptz NOT NULL
);

-- Every signed step, appended, never rewritten (R-PROC-2).
CREATE TABLE application_step (
    id                     bigserial   PRIMARY KEY,
    application_id         uuid        NOT NULL REFERENCES application,
    step                   integer     NOT NULL,
    approve                boolean     NOT NULL,
    remarks                text        NOT NULL,
    officer_id             text        NOT NULL,
    officer_name           text        NOT NULL,
    role                   integer     NOT NULL,
    division               text        NOT NULL,
    signed_at              timestamptz NOT NULL,
    recorded_at            timestamptz NOT NULL,
    verification_report_id text
);

CREATE TABLE objection (
    objection_id   uuid        PRIMARY KEY,
    application_id uuid        NOT NULL REFERENCES application,
    text           text        NOT NULL,
    recorded_by    text        NOT NULL,
    recorded_at    timestamptz NOT NULL
);
-- A resolution supersedes the objection without rewriting it.
CREATE TABLE objection_resolution (
    objection_id uuid        PRIMARY KEY REFERENCES objection,
    resolution   text        NOT NULL,
    resolved_by  text        NOT NULL,
    resolved_at  timestamptz NOT NULL
);

-- Each change of a household's amount, with its reason (R-ELIG-4 recalculation).
CREATE TABLE amount_change (
    id              bigserial   PRIMARY KEY,
    household_id    uuid        NOT NULL REFERENCES household,
    from_fen        bigint      NOT NULL,
    to_fen          bigint      NOT NULL,
    effective_month date        NOT NULL,
    reason          text        NOT NULL,
    recorded_at     timestamptz NOT NULL
);
