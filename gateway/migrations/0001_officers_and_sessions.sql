-- The officer registry (who may log in, with which roles, for which
-- division), its append-only change record, login sessions and the
-- append-only record of every login attempt.

CREATE TABLE officer (
    officer_id        text        PRIMARY KEY,
    name              text        NOT NULL,
    -- dibao.common.v1.OfficerRole values.
    roles             integer[]   NOT NULL,
    division          text        NOT NULL,
    -- 'active' or 'disabled'.
    status            text        NOT NULL DEFAULT 'active',
    identity_number   text,
    oidc_subject      text        UNIQUE,
    -- argon2id, PHC string.
    password_hash     text        NOT NULL,
    -- The TOTP secret, AES-256-GCM under the gateway's secret key: nonce || ciphertext.
    totp_secret       bytea       NOT NULL,
    -- The last TOTP time step accepted: a code is used once.
    last_totp_step    bigint      NOT NULL DEFAULT 0,
    failed_attempts   integer     NOT NULL DEFAULT 0,
    locked_until      timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX officer_by_division ON officer (division text_pattern_ops);

CREATE TABLE officer_change (
    seq         bigserial   PRIMARY KEY,
    officer_id  text        NOT NULL,
    changed_by  text        NOT NULL,
    change      text        NOT NULL,
    -- The division the officer served when it changed: an administrator
    -- lists the changes inside their own.
    division    text        NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX officer_change_by_officer ON officer_change (officer_id, seq);

CREATE TABLE session (
    -- SHA-256 of the token, hex: the token itself is never stored.
    token_hash    text        PRIMARY KEY,
    session_id    text        NOT NULL UNIQUE,
    officer_id    text        NOT NULL,
    -- 'password' or 'oidc'; an OIDC session carries its claims.
    via           text        NOT NULL,
    oidc_roles    integer[],
    oidc_division text,
    oidc_name     text,
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX session_by_officer ON session (officer_id) WHERE revoked_at IS NULL;

CREATE TABLE login_event (
    seq         bigserial   PRIMARY KEY,
    officer_id  text        NOT NULL,
    -- 'ok', 'bad_password', 'bad_totp', 'locked', 'disabled', 'unknown', 'logout', 'expired'.
    outcome     text        NOT NULL,
    via         text        NOT NULL,
    client      text        NOT NULL,
    at          timestamptz NOT NULL
);

-- Records are never rewritten (MLPS audit): the change record and the
-- login record refuse UPDATE, DELETE and TRUNCATE, whoever asks.
CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER officer_change_append_only BEFORE UPDATE OR DELETE ON officer_change
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER officer_change_no_truncate BEFORE TRUNCATE ON officer_change
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER login_event_append_only BEFORE UPDATE OR DELETE ON login_event
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER login_event_no_truncate BEFORE TRUNCATE ON login_event
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
