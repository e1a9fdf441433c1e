-- A household's members changed (家庭成员变更; issue 23, item 6): each
-- change kept with who joined and who left, why, and the officer who
-- signed it, never rewritten.
CREATE TABLE member_change (
    id             bigserial   PRIMARY KEY,
    household_id   uuid        NOT NULL REFERENCES household,
    joined         text[]      NOT NULL,
    left_household text[]      NOT NULL,
    reason         text        NOT NULL,
    officer_id     text        NOT NULL,
    officer_name   text        NOT NULL,
    role           integer     NOT NULL,
    division       text        NOT NULL,
    assertion_id   text        NOT NULL,
    issuer         text        NOT NULL,
    recorded_at    timestamptz NOT NULL
);
CREATE INDEX member_change_by_household ON member_change (household_id, id);
CREATE TRIGGER member_change_append_only BEFORE UPDATE OR DELETE ON member_change
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER member_change_no_truncate BEFORE TRUNCATE ON member_change
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();

-- Each roster import (a migration tool), with the officer who ran it and
-- how it ended; the households it added carry its id (household.import_id,
-- added with the ledger that reads it).
CREATE TABLE roster_import (
    import_id    uuid        PRIMARY KEY,
    division     text        NOT NULL,
    officer_id   text        NOT NULL,
    officer_name text        NOT NULL,
    assertion_id text        NOT NULL,
    issuer       text        NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    applied      bigint,
    unchanged    bigint,
    refused      bigint
);
