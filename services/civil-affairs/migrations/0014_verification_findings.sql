-- What the verification step found in the departments' records, as the
-- officer read it when signing: the changes they certified and the income
-- they report beside the declared (R-VER-3, R-VER-4). Kept with the
-- application so the reviewer and the approver read the same lines.
ALTER TABLE application ADD COLUMN verification_findings text NOT NULL DEFAULT '';
