-- The office's changes of a household's members (成员变更; issue 23,
-- item 6): who joined and who left, why, and the officer who recorded it,
-- proven by their assertion; kept, never rewritten.
CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: records are never rewritten, only superseded', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TABLE member_change (
    id             bigserial   PRIMARY KEY,
    household_id   uuid        NOT NULL REFERENCES poor_household,
    joined         text[]      NOT NULL,
    left_household text[]      NOT NULL,
    reason         text        NOT NULL,
    officer_id     text        NOT NULL,
    officer_name   text        NOT NULL,
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
