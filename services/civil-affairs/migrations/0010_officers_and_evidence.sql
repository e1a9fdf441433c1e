-- Who signed, proven (R-PROC-2): each signed record keeps the officer
-- assertion that proved its officer, its issuer, and a digest of what was
-- signed.
ALTER TABLE application_step ADD COLUMN assertion_id text, ADD COLUMN issuer text, ADD COLUMN digest text;
ALTER TABLE household_review ADD COLUMN assertion_id text, ADD COLUMN issuer text, ADD COLUMN digest text;
ALTER TABLE member_death ADD COLUMN assertion_id text;
ALTER TABLE objection ADD COLUMN assertion_id text;
ALTER TABLE objection_resolution ADD COLUMN assertion_id text;
ALTER TABLE county_policy ADD COLUMN assertion_id text;

-- A sample keeps the households it was drawn from, so its recorded seed
-- draws it again (R-AUD-1).
ALTER TABLE audit_sample ADD COLUMN population uuid[] NOT NULL DEFAULT '{}', ADD COLUMN assertion_id text;

-- What the separation of duties refused, kept with who tried.
CREATE TABLE refused_attempt (
    id             bigserial   PRIMARY KEY,
    application_id uuid,
    household_id   uuid,
    officer_id     text        NOT NULL,
    assertion_id   text,
    reason         text        NOT NULL,
    attempted_at   timestamptz NOT NULL
);


-- Records are never rewritten, only superseded (R-PROC-2): the signed
-- tables refuse UPDATE, DELETE and TRUNCATE, whoever asks.
CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: records are never rewritten, only superseded', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['application_step', 'household_review', 'member_death', 'objection',
                             'objection_resolution', 'county_policy', 'audit_sample', 'amount_change',
                             'refused_attempt'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION refuse_rewrite()',
                       t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite()',
                       t || '_no_truncate', t);
    END LOOP;
END $$;
