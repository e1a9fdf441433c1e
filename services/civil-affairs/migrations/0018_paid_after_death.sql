-- Overpayments recovered (R-PROC-1; issue 23, item 1): money of a payment
-- above what its month was owed that came back, from the household or
-- reversed by the bank. Each recovery is kept as recorded; the payment
-- carries their sum, so what is left overpaid is read without a join.
ALTER TABLE payment ADD COLUMN recovered_fen bigint NOT NULL DEFAULT 0 CHECK (recovered_fen >= 0);

CREATE TABLE payment_recovery (
    id            bigserial   PRIMARY KEY,
    reference     text        NOT NULL REFERENCES payment,
    amount_fen    bigint      NOT NULL CHECK (amount_fen > 0),
    note          text        NOT NULL,
    recorded_by   text        NOT NULL,
    recorded_at   timestamptz NOT NULL,
    assertion_id  text        NOT NULL,
    issuer        text        NOT NULL
);
CREATE INDEX payment_recovery_by_payment ON payment_recovery (reference);
CREATE TRIGGER payment_recovery_append_only BEFORE UPDATE OR DELETE ON payment_recovery
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER payment_recovery_no_truncate BEFORE TRUNCATE ON payment_recovery
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();

-- The deceased's name as the household listed them: once the member has
-- left the household, the comparison's list (f) still names them.
ALTER TABLE member_death ADD COLUMN name text NOT NULL DEFAULT '';
