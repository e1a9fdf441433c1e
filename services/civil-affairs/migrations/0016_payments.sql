-- The monthly payment roll (R-PROC-1): one roll per county and month, its
-- payments one per household and month, whatever the roll.
CREATE TABLE payment_roll (
    roll_id       uuid        PRIMARY KEY,
    county        text        NOT NULL,
    month         date        NOT NULL, -- its first day
    status        integer     NOT NULL, -- RollStatus
    households    integer     NOT NULL,
    total_fen     bigint      NOT NULL,
    prepared_at   timestamptz NOT NULL,
    prepared_by   text        NOT NULL,
    signed_at     timestamptz,
    signed_by     text,
    assertion_id  text,
    UNIQUE (county, month)
);

CREATE TABLE payment (
    reference     text        PRIMARY KEY, -- 业务编号: county, yyyymm, sequence
    roll_id       uuid        NOT NULL REFERENCES payment_roll,
    household_id  uuid        NOT NULL REFERENCES household,
    month         date        NOT NULL,
    amount_fen    bigint      NOT NULL CHECK (amount_fen > 0),
    bank          text        NOT NULL,
    account       text        NOT NULL,
    holder_name   text        NOT NULL,
    status        integer     NOT NULL, -- PaymentStatus
    reason        text        NOT NULL DEFAULT '',
    returned_at   timestamptz,
    -- A household is paid at most once for a month.
    UNIQUE (household_id, month)
);
CREATE INDEX payment_by_roll ON payment (roll_id, reference);
