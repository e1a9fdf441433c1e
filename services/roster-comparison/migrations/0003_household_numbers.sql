-- Each roster's own number of a household (户编号), by which officers name
-- it in the lists and exports; empty where the roster gave none (and for
-- rows written before the events carried it, until a view rebuild).
ALTER TABLE roster_household ADD COLUMN household_number text NOT NULL DEFAULT '';
