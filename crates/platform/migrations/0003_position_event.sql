-- The event id of the record just before each recorded position, so a
-- restarted inbox can tell the broker still holds the log it read: after a
-- broker lost its data and new records filled the partition past the old
-- position, the record there is another event.
ALTER TABLE consumer_position ADD COLUMN last_event_id uuid;
