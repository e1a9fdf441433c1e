-- Upward reports (R-AUD-3; seed 003: quarterly to the province's civil
-- affairs department and poverty office; seed 001: the adjusted roster to
-- the county). A report is computed only from what is recorded and never
-- rewritten, so the same report asked again gives the same figures.

-- The roster's ledger: what each household stated (status, programme,
-- category, amount, living members) from when, appended by the database
-- itself whenever one of them changes, whichever code path changed it. The
-- roster "as at" an instant is each household's last row recorded before it.
CREATE TABLE household_ledger (
    id                 bigserial   PRIMARY KEY,
    household_id       uuid        NOT NULL REFERENCES household,
    county             text        NOT NULL,
    status             integer     NOT NULL,
    programme          integer     NOT NULL,
    category           integer     NOT NULL,
    monthly_amount_fen bigint      NOT NULL,
    persons            integer     NOT NULL,
    -- The household entered the roster by a roster import (a migration),
    -- not by an application.
    imported           boolean     NOT NULL DEFAULT false,
    recorded_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX household_ledger_by_county ON household_ledger (county, recorded_at);
CREATE INDEX household_ledger_by_household ON household_ledger (household_id, id);
CREATE TRIGGER household_ledger_append_only BEFORE UPDATE OR DELETE ON household_ledger
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER household_ledger_no_truncate BEFORE TRUNCATE ON household_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();

-- The roster import that added a household, if one did (roster_import).
ALTER TABLE household ADD COLUMN import_id uuid;

-- Appends the households' rows where what they state differs from their
-- last row: one statement for every household a statement touched. A
-- household's first row says whether a roster import brought it (its
-- import_id; an application's household is first written applying).
CREATE FUNCTION ledger_households(ids uuid[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO household_ledger (household_id, county, status, programme, category, monthly_amount_fen, persons, imported)
    SELECT h.household_id, h.county, h.status, h.programme, h.category, h.monthly_amount_fen, now.persons,
           last.id IS NULL AND h.import_id IS NOT NULL
    FROM household h
    CROSS JOIN LATERAL (SELECT count(*)::int AS persons FROM household_member m
                        WHERE m.household_id = h.household_id AND m.live) now
    LEFT JOIN LATERAL (SELECT l.id, l.status, l.programme, l.category, l.monthly_amount_fen, l.persons
                       FROM household_ledger l WHERE l.household_id = h.household_id
                       ORDER BY l.id DESC LIMIT 1) last ON true
    WHERE h.household_id = ANY(ids)
      AND (last.id IS NULL
           OR (last.status, last.programme, last.category, last.monthly_amount_fen, last.persons)
              <> (h.status, h.programme, h.category, h.monthly_amount_fen, now.persons))
$$;

CREATE FUNCTION ledger_household_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_households(array_agg(DISTINCT household_id)) FROM new_rows;
    RETURN NULL;
END $$;
CREATE FUNCTION ledger_member_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_households(array_agg(DISTINCT household_id)) FROM old_rows;
    RETURN NULL;
END $$;

-- A household is written with its members: its first row follows them.
CREATE TRIGGER household_ledger_on_update AFTER UPDATE ON household
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_household_changed();
CREATE TRIGGER household_ledger_on_member_insert AFTER INSERT ON household_member
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_household_changed();
CREATE TRIGGER household_ledger_on_member_update AFTER UPDATE ON household_member
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_household_changed();
CREATE TRIGGER household_ledger_on_member_delete AFTER DELETE ON household_member
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_member_removed();

-- What stood before the ledger: every household as it is now, once.
INSERT INTO household_ledger (household_id, county, status, programme, category, monthly_amount_fen, persons, recorded_at)
SELECT h.household_id, h.county, h.status, h.programme, h.category, h.monthly_amount_fen,
       (SELECT count(*) FROM household_member m WHERE m.household_id = h.household_id AND m.live)::int,
       h.created_at
FROM household h;

-- The comparison's finished runs as it published them (ComparisonCompleted):
-- the list sizes a report gives for a county.
CREATE TABLE comparison_completed (
    run_id       text        PRIMARY KEY,
    division     text        NOT NULL,
    completed_at timestamptz NOT NULL,
    -- The lists' letters and their sizes, in the same order.
    lists        text[]      NOT NULL,
    sizes        bigint[]    NOT NULL
);
CREATE INDEX comparison_completed_by_division ON comparison_completed (division, completed_at DESC);

-- Each report as generated: its figures (dibao.civil_affairs.v1.Report,
-- encoded) and their digest, never rewritten. A scheduled report is made
-- once per division and period.
CREATE TABLE upward_report (
    report_id     uuid        PRIMARY KEY,
    division      text        NOT NULL,
    period_start  date        NOT NULL,
    period_end    date        NOT NULL,
    quarterly     boolean     NOT NULL,
    as_of         timestamptz NOT NULL,
    body          bytea       NOT NULL,
    sha256        text        NOT NULL,
    scheduled     boolean     NOT NULL,
    generated_by  text        NOT NULL,
    generated_at  timestamptz NOT NULL
);
CREATE INDEX upward_report_by_division ON upward_report (division, period_end DESC, generated_at DESC);
CREATE UNIQUE INDEX upward_report_scheduled_once ON upward_report (division, period_start, quarterly) WHERE scheduled;
CREATE TRIGGER upward_report_append_only BEFORE UPDATE OR DELETE ON upward_report
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER upward_report_no_truncate BEFORE TRUNCATE ON upward_report
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
