-- Every query of a person's data, hash-chained (X-Road style evidence):
-- each record's hash covers the previous record's hash and its own fields,
-- so an edited, deleted or reordered record breaks the chain at that point.
CREATE TABLE access_log (
    seq         bigint      PRIMARY KEY,
    at          timestamptz NOT NULL,
    caller      text        NOT NULL,
    officer_id  text        NOT NULL,
    consent_id  text        NOT NULL,
    purpose     text        NOT NULL,
    person      text        NOT NULL,
    items       text        NOT NULL,
    outcome     text        NOT NULL,
    prev_hash   bytea       NOT NULL,
    hash        bytea       NOT NULL
);
-- "Who looked at my data": one person's accesses in order.
CREATE INDEX access_log_person ON access_log (person, seq);

-- Append-only for the service's own role; the chain catches whoever
-- bypasses this (a superuser disabling the trigger).
CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log is append-only';
END $$;
CREATE TRIGGER access_log_no_change BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only();
