-- The officers' work lists (ListApplications): open applications oldest first.
CREATE INDEX application_open ON application (created_at, application_id) WHERE status = 'open';
