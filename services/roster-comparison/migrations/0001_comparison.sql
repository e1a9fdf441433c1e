-- The comparison's own view of both rosters, kept from their events.
--
-- Versioned rather than updated in place (R-CMP-4): every change to the view
-- takes the next `view_position` and closes the row it replaces
-- (`valid_to`), so "the rosters as of position P" is every row with
-- valid_from <= P < coalesce(valid_to, infinity), and a run re-read at its
-- recorded position sees exactly what it saw the first time.
CREATE SEQUENCE view_position;

CREATE TABLE roster_household (
    side          text     NOT NULL CHECK (side IN ('dibao', 'poor')),
    household_id  text     NOT NULL,
    village       text     NOT NULL,
    county        text     NOT NULL,
    -- false once the household left the roster (dibao exit); kept so the
    -- aggregate version survives for ordering.
    on_roster     boolean  NOT NULL,
    -- dibao: 1 dibao, 2 special hardship (events.Programme).
    programme     integer  NOT NULL DEFAULT 0,
    -- poor: 1 in poverty, 2 exited, 3 returned (PovertyStatus).
    status        integer  NOT NULL DEFAULT 0,
    -- poor: the dibao-registered-poor flag as the poverty roster holds it.
    flagged       boolean  NOT NULL DEFAULT false,
    -- Living members, head first; names in the same order.
    members       text[]   NOT NULL,
    names         text[]   NOT NULL,
    -- Last aggregate version applied: an older or replayed event changes nothing.
    version       bigint   NOT NULL,
    valid_from    bigint   NOT NULL,
    valid_to      bigint,
    PRIMARY KEY (side, household_id, valid_from)
);
CREATE UNIQUE INDEX roster_household_current ON roster_household (side, household_id) WHERE valid_to IS NULL;
CREATE INDEX roster_household_by_county ON roster_household (county, valid_from);

-- Events applied to the view, per roster: what a run records beside its position.
CREATE TABLE view_source (
    side           text   PRIMARY KEY,
    events_applied bigint NOT NULL
);
INSERT INTO view_source VALUES ('dibao', 0), ('poor', 0);

-- Public security's death register, versioned the same way.
CREATE TABLE death_record (
    identity_number text   NOT NULL,
    name            text   NOT NULL,
    died_on         date   NOT NULL,
    source          text   NOT NULL,
    valid_from      bigint NOT NULL,
    valid_to        bigint,
    PRIMARY KEY (identity_number, valid_from)
);
CREATE UNIQUE INDEX death_record_current ON death_record (identity_number) WHERE valid_to IS NULL;

-- The registry of dibao handlers and village committee members and their
-- close relatives, per division it was imported for.
CREATE TABLE official_link (
    division        text   NOT NULL,
    official_id     text   NOT NULL,
    official_name   text   NOT NULL,
    role            integer NOT NULL, -- OfficialRole
    official_village text  NOT NULL,
    person_id       text   NOT NULL,
    person_name     text   NOT NULL,
    relation        text   NOT NULL,
    valid_from      bigint NOT NULL,
    valid_to        bigint,
    PRIMARY KEY (division, official_id, person_id, valid_from)
);
CREATE UNIQUE INDEX official_link_current ON official_link (division, official_id, person_id) WHERE valid_to IS NULL;

-- A comparison run and what it ran on.
CREATE TABLE comparison_run (
    run_id            uuid        PRIMARY KEY,
    division          text        NOT NULL,
    -- Leading digits of every village inside the division ('' for all).
    scope             text        NOT NULL,
    view_position     bigint      NOT NULL,
    dibao_events      bigint      NOT NULL,
    poverty_events    bigint      NOT NULL,
    as_of             date        NOT NULL,
    reproduces        uuid        REFERENCES comparison_run,
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    dibao_households  bigint      NOT NULL DEFAULT 0,
    poor_households   bigint      NOT NULL DEFAULT 0,
    list_sizes        bigint[]    NOT NULL DEFAULT '{}', -- by list (a)..(g)
    digest            text        NOT NULL DEFAULT ''
);
CREATE INDEX comparison_run_by_scope ON comparison_run (scope, finished_at);

-- The run's entries in list order (`ordinal`); households as
-- "id|village|head name|member count".
CREATE TABLE run_entry (
    run_id       uuid    NOT NULL REFERENCES comparison_run ON DELETE CASCADE,
    ordinal      integer NOT NULL,
    entry_key    text    NOT NULL,
    kind         "char"  NOT NULL,
    village      text    NOT NULL,
    dibao        text[]  NOT NULL,
    poor         text[]  NOT NULL,
    members      text[]  NOT NULL,
    explanation  text    NOT NULL,
    PRIMARY KEY (run_id, ordinal)
);
CREATE INDEX run_entry_by_list ON run_entry (run_id, kind, village text_pattern_ops, ordinal);
CREATE INDEX run_entry_by_key ON run_entry (entry_key);

-- When an entry was first reported, across runs (for ageing open items).
CREATE TABLE entry_seen (
    entry_key     text        PRIMARY KEY,
    first_run     uuid        NOT NULL,
    first_seen_at timestamptz NOT NULL
);

-- Decisions (R-CMP-3), on the entry's key: they outlive the run that
-- reported it, so next month's run shows this month's decision.
CREATE TABLE decision (
    entry_key      text        PRIMARY KEY,
    kind           "char"      NOT NULL,
    application_id text        NOT NULL DEFAULT '',
    conclusion     text        NOT NULL DEFAULT '',
    officer_id     text        NOT NULL,
    officer_name   text        NOT NULL,
    officer_role   integer     NOT NULL,
    officer_division text      NOT NULL,
    recorded_at    timestamptz NOT NULL
);

-- Households by member, for the continuous comparison's group lookups.
-- fastupdate off: with it, every lookup also scans the index's pending list
-- of recent inserts linearly, and under a steady stream of changes that
-- list is always long.
CREATE INDEX roster_household_members ON roster_household USING gin (members) WITH (fastupdate = off)
    WHERE valid_to IS NULL AND on_roster;
CREATE INDEX death_record_current_person ON death_record (identity_number) WHERE valid_to IS NULL;
CREATE INDEX official_link_current_person ON official_link (person_id) WHERE valid_to IS NULL;

-- The continuous comparison's lists: every entry as of the latest change,
-- kept in the transaction that changed the view. `households` names every
-- household of the entry ("d:" dibao, "p:" poor) so a change finds the
-- entries it replaces.
CREATE TABLE live_entry (
    entry_key   text   PRIMARY KEY,
    kind        "char" NOT NULL,
    village     text   NOT NULL,
    households  text[] NOT NULL,
    dibao       text[] NOT NULL,
    poor        text[] NOT NULL,
    members     text[] NOT NULL,
    explanation text   NOT NULL,
    position    bigint NOT NULL
);
CREATE INDEX live_entry_households ON live_entry USING gin (households) WITH (fastupdate = off);
CREATE INDEX live_entry_by_list ON live_entry (kind, village text_pattern_ops, entry_key);
-- What changed since a position: for whoever follows the lists as they change.
CREATE INDEX live_entry_by_position ON live_entry (position);
