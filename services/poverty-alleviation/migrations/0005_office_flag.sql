-- The dibao-registered-poor flag is the office's record (R-ROSTER-2): as
-- the office gave it on registration or in its roster file, or changed it
-- (SetDibaoFlag), or as the sync set it on a dibao enrolment or exit
-- (R-SYNC-2). Until now only the sync set it, hence the default.
ALTER TABLE poor_household
    ADD COLUMN flag_recorded_by text NOT NULL DEFAULT 'sync',
    ADD COLUMN flag_recorded_at timestamptz,
    ADD COLUMN flag_basis       text NOT NULL DEFAULT '';
