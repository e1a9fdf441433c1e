-- The household a consent was signed for (R-VER-1), as civil affairs holds
-- it: its county is the consent's, its live members are the signatories who
-- are not relatives, and only that household is checked under it. Consents
-- registered before carry none and check nothing any more.
ALTER TABLE consent ADD COLUMN household_id text;
CREATE INDEX consent_by_household ON consent (household_id);
