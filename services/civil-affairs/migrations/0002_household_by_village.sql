-- Lists and exports select a division's households by code prefix.
CREATE INDEX household_by_village ON household (village text_pattern_ops, household_id);
