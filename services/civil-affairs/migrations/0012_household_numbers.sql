-- The county's household number (户编号) is `source_id`: the roster file's
-- for an imported household; one is given at enrolment to a household that
-- came by application, from a sequence of the county's.
CREATE TABLE household_number_counter (
    county text   PRIMARY KEY,
    last   bigint NOT NULL
);

-- The poverty office's number of a household, in this service's view of
-- its roster: the priority candidates for review are named by it.
ALTER TABLE poverty_household ADD COLUMN household_number text NOT NULL DEFAULT '';
