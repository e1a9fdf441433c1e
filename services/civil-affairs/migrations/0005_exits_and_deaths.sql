-- Exits go through the same signed steps as applications (R-PROC-1, R-PROC-2).
ALTER TABLE application ADD COLUMN kind text NOT NULL DEFAULT 'enrol' CHECK (kind IN ('enrol', 'exit'));
ALTER TABLE application ADD COLUMN exit_reason integer;
ALTER TABLE application DROP CONSTRAINT application_status_check;
ALTER TABLE application ADD CONSTRAINT application_status_check
    CHECK (status IN ('open', 'refused', 'enrolled', 'exited'));
-- One open application or exit per household at a time.
CREATE UNIQUE INDEX one_open_application ON application (household_id) WHERE status = 'open';

-- Deaths as recorded, with where they are known from.
CREATE TABLE member_death (
    identity_number text        PRIMARY KEY,
    household_id    uuid        NOT NULL REFERENCES household,
    died_on         date        NOT NULL,
    source          text        NOT NULL,
    recorded_by     text        NOT NULL,
    recorded_at     timestamptz NOT NULL
);
