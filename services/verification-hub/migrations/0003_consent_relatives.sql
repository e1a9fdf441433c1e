-- Where county policy asks close lineal relatives to sign the consent too
-- (R-VER-1), a consent without a relative's signature needs the registering
-- officer's finding that the household has none outside it.
ALTER TABLE consent ADD COLUMN no_relatives_outside_household boolean NOT NULL DEFAULT false;
