-- The scanned signed consent itself (R-VER-1), kept beside the consent,
-- its digest computed by the hub; consents registered with a typed digest
-- alone have none.
CREATE TABLE consent_document (
    consent_id uuid PRIMARY KEY REFERENCES consent (consent_id),
    content bytea NOT NULL,
    size_bytes integer NOT NULL
);
ALTER TABLE consent ADD COLUMN digest_computed boolean NOT NULL DEFAULT false;
