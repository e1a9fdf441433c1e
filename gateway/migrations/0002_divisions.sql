-- Names of the administrative divisions (GB/T 2260 province, city and
-- county codes; the statistics bureau's township and village codes), as the
-- province's reference table gives them: what the console shows beside a
-- code. Reference data, replaced by an import, never a person's data.
CREATE TABLE division (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{6}([0-9]{3}([0-9]{3})?)?$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    imported_at timestamptz NOT NULL DEFAULT now()
);
