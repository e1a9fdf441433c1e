-- The county a consent was registered for: its officers alone revoke it,
-- and only that county's checks run under it. Consents registered before
-- carry none and stay usable wherever they were.
ALTER TABLE consent ADD COLUMN county text;
