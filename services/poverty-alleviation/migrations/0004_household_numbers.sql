-- The office's household number (户编号) is `source_id`: the roster file's
-- for an imported household; one is given at registration to a household
-- registered one by one, from a sequence of the county's.
CREATE TABLE household_number_counter (
    county text   PRIMARY KEY,
    last   bigint NOT NULL
);
