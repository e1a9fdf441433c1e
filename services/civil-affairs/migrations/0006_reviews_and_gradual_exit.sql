-- Reviews (R-REV-1), each signed and kept; the latest says when the next is due.
CREATE TABLE household_review (
    review_id    uuid        PRIMARY KEY,
    household_id uuid        NOT NULL REFERENCES household,
    reviewed_on  date        NOT NULL,
    outcome      integer     NOT NULL, -- ReviewOutcome
    from_fen     bigint      NOT NULL,
    to_fen       bigint      NOT NULL,
    explanation  text        NOT NULL,
    remarks      text        NOT NULL,
    officer_id   text        NOT NULL,
    officer_name text        NOT NULL,
    role         integer     NOT NULL,
    division     text        NOT NULL,
    signed_at    timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL
);
CREATE INDEX household_review_latest ON household_review (household_id, reviewed_on DESC);
ALTER TABLE household ADD COLUMN last_reviewed_on date;

-- A gradual exit in progress (R-BEN-4): from which month, for how long, in
-- which steps, from which amount. The month's amount follows from these.
ALTER TABLE household
    ADD COLUMN gradual_exit_from     date,
    ADD COLUMN gradual_exit_months   integer,
    ADD COLUMN gradual_exit_step     text CHECK (gradual_exit_step IN ('monthly', 'quarterly')),
    ADD COLUMN gradual_exit_base_fen bigint;
