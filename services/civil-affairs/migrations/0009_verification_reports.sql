-- The verification hub's completed reports, from its VerificationCompleted
-- events (R-VER-2): the verification step accepts only a complete report
-- the hub made for the application's own household.
CREATE TABLE verification_report (
    report_id      text        NOT NULL,
    version        integer     NOT NULL,
    household_id   text        NOT NULL,
    completed_at   timestamptz NOT NULL,
    complete       boolean     NOT NULL,
    finding_count  integer     NOT NULL,
    PRIMARY KEY (report_id, version)
);
CREATE INDEX verification_report_by_household ON verification_report (household_id);
