-- Consents (授权书, R-VER-1): who signed, whom and what they cover, how
-- long. Never rewritten: a revocation is recorded beside it.
CREATE TABLE consent (
    consent_id       uuid        PRIMARY KEY,
    document_sha256  text        NOT NULL,
    signed_on        date        NOT NULL,
    valid_until      date        NOT NULL,
    items            text[]      NOT NULL,
    registered_by    text        NOT NULL,
    registered_name  text        NOT NULL,
    registered_at    timestamptz NOT NULL,
    revoked_at       timestamptz,
    revoked_by       text,
    revoke_reason    text
);

CREATE TABLE consent_signatory (
    consent_id       uuid    NOT NULL REFERENCES consent,
    identity_number  text    NOT NULL,
    name             text    NOT NULL,
    relation         text    NOT NULL,
    relative         boolean NOT NULL,
    PRIMARY KEY (consent_id, identity_number)
);

CREATE TABLE consent_person (
    consent_id       uuid NOT NULL REFERENCES consent,
    identity_number  text NOT NULL,
    PRIMARY KEY (consent_id, identity_number)
);

-- Reports (R-VER-4): stored whole, one row per version; never updated.
CREATE TABLE report (
    report_id     uuid        NOT NULL,
    version       integer     NOT NULL,
    household_id  text        NOT NULL,
    consent_id    uuid        NOT NULL REFERENCES consent,
    county        text        NOT NULL,
    complete      boolean     NOT NULL,
    finding_count integer     NOT NULL,
    completed_at  timestamptz NOT NULL,
    body          bytea       NOT NULL,
    PRIMARY KEY (report_id, version)
);
CREATE INDEX report_by_household ON report (household_id, completed_at);
