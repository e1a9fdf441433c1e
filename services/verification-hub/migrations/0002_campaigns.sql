-- A campaign (集中核查, R-VER-5) verifies every household of a division.
-- Its household list is fixed when it starts (one transaction), and each
-- household is marked when its report is stored, so a campaign cut short
-- resumes with what is still pending and never asks again what was done.
CREATE INDEX consent_person_by_person ON consent_person (identity_number);

CREATE TABLE campaign (
    campaign_id       uuid        PRIMARY KEY,
    division          text        NOT NULL,
    purpose           text        NOT NULL,
    officer_id        text        NOT NULL,
    officer_name      text        NOT NULL,
    officer_role      integer     NOT NULL,
    officer_division  text        NOT NULL,
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz
);

CREATE TABLE campaign_household (
    campaign_id          uuid    NOT NULL REFERENCES campaign,
    household_id         text    NOT NULL,
    county               text    NOT NULL,
    persons              text[]  NOT NULL,
    consent_id           uuid,
    -- pending | done | failed
    status               text    NOT NULL,
    reason               text    NOT NULL DEFAULT '',
    report_id            uuid,
    findings             integer NOT NULL DEFAULT 0,
    departments_answered text[]  NOT NULL DEFAULT '{}',
    departments_failed   text[]  NOT NULL DEFAULT '{}',
    PRIMARY KEY (campaign_id, household_id)
);
CREATE INDEX campaign_household_pending ON campaign_household (campaign_id) WHERE status = 'pending';
