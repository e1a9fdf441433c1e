-- Exits, deaths and imports look members up by household.
CREATE INDEX household_member_by_household ON household_member (household_id);
