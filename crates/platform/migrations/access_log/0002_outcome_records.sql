-- A query is recorded when it arrives ("asked"), so the record is committed
-- while the department works; what was answered follows as its own record
-- naming the query it completes. No answer leaves before its query's record
-- is committed; an outcome record lost to a crash leaves the query on record.
ALTER TABLE access_log ADD COLUMN completes bigint;
