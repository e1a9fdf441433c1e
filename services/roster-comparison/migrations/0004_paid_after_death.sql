-- Deceased members of a dibao household still overpaid for months after
-- their death, as civil affairs' PaidAfterDeath last said (issue 23, item
-- 1): list (f) flags each while it stands, though the member has left the
-- household's living members. Parallel arrays: identity number, date of
-- death, name. Versioned with the rest of the row.
ALTER TABLE roster_household ADD COLUMN dead_paid text[] NOT NULL DEFAULT '{}';
ALTER TABLE roster_household ADD COLUMN dead_paid_on date[] NOT NULL DEFAULT '{}';
ALTER TABLE roster_household ADD COLUMN dead_paid_names text[] NOT NULL DEFAULT '{}';
