-- A list read a page at a time in the run's order: walked in that order
-- within its list, rather than every entry of the list sorted for each
-- page (a county's list (b) holds tens of thousands).
CREATE INDEX run_entry_by_list_order ON run_entry (run_id, kind, ordinal);
