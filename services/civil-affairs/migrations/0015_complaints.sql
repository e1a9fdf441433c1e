-- Complaints and reports (举报、信访; R-AUD-2). The complaint's own row
-- moves (assigned, closed); every step taken on it is appended to
-- complaint_step and never rewritten.
CREATE TABLE complaint (
    complaint_id        uuid        PRIMARY KEY,
    complaint_number    text        NOT NULL UNIQUE,
    county              text        NOT NULL,
    -- The county or township it was filed in.
    division            text        NOT NULL,
    channel             integer     NOT NULL, -- ComplaintChannel
    received_on         date        NOT NULL,
    anonymous           boolean     NOT NULL,
    complainant_name    text        NOT NULL,
    complainant_contact text        NOT NULL,
    content             text        NOT NULL,
    household_id        uuid REFERENCES household,
    application_id      uuid REFERENCES application,
    -- The officer complained of, by their id in the officers' registry ('' for none).
    named_officer_id    text        NOT NULL,
    township            text,
    due_on              date,
    status              integer     NOT NULL, -- ComplaintStatus
    outcome             integer     NOT NULL DEFAULT 0,
    reply               text        NOT NULL DEFAULT '',
    filed_at            timestamptz NOT NULL,
    closed_at           timestamptz
);
CREATE INDEX complaint_by_division ON complaint (division text_pattern_ops, filed_at DESC);
CREATE INDEX complaint_by_township ON complaint (township text_pattern_ops, filed_at DESC);
CREATE INDEX complaint_open ON complaint (county, township) WHERE status <> 3;

CREATE TABLE complaint_step (
    complaint_id  uuid        NOT NULL REFERENCES complaint,
    seq           integer     NOT NULL,
    action        text        NOT NULL,
    note          text        NOT NULL,
    officer_id    text        NOT NULL,
    officer_name  text        NOT NULL,
    role          integer     NOT NULL,
    division      text        NOT NULL,
    acted_at      timestamptz NOT NULL,
    assertion_id  text        NOT NULL,
    issuer        text        NOT NULL,
    PRIMARY KEY (complaint_id, seq)
);
CREATE TRIGGER complaint_step_append_only BEFORE UPDATE OR DELETE ON complaint_step
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER complaint_step_no_truncate BEFORE TRUNCATE ON complaint_step
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();

-- The county's complaint numbers, a sequence per county and year.
CREATE TABLE complaint_counter (
    county text    NOT NULL,
    year   integer NOT NULL,
    last   bigint  NOT NULL,
    PRIMARY KEY (county, year)
);
