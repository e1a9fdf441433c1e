-- Flags are recomputed per household's members on every dibao event; without
-- this index each recomputation scanned every member of the roster.
CREATE INDEX poor_member_by_household ON poor_member (household_id);
