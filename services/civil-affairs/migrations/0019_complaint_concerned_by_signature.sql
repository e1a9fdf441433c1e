-- The officers a complaint concerns are those who signed a step of the
-- application it names (their verified signatures), no longer an officer
-- id typed into the complaint.
ALTER TABLE complaint DROP COLUMN named_officer_id;
