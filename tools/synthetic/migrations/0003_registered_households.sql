-- The population information system lists who else is registered in a
-- person's household (户口簿, R-ROSTER-4): registrations by household number.
CREATE INDEX dept_record_by_registered_household ON dept_record ((attrs->>'household_no'))
    WHERE item = 'ITEM_HOUSEHOLD_REGISTRATION';
