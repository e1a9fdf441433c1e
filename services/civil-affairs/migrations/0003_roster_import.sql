-- Households imported from a county's existing roster (花名册) keep the
-- county's own household number, so re-importing the same file finds them
-- and changes nothing.
ALTER TABLE household ADD COLUMN source_id text;
CREATE UNIQUE INDEX household_by_source ON household (county, source_id) WHERE source_id IS NOT NULL;
