-- Officer assertions a service accepted, kept until they expire: one is
-- seen once, whichever replica it reaches.
CREATE TABLE seen_assertion (
    assertion_id text        PRIMARY KEY,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX seen_assertion_expiry ON seen_assertion (expires_at);
