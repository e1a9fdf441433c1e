-- The version of the verification report the verification step was signed
-- on: county approval accepts that version only while it is the latest
-- (R-VER-2). The report's id stays in verification_report_id.
ALTER TABLE application ADD COLUMN verification_report_version integer;

-- The report a review stood on (R-VER-5): required where it kept or raised
-- the amount.
ALTER TABLE household_review ADD COLUMN verification_report_id text,
                             ADD COLUMN verification_report_version integer;
