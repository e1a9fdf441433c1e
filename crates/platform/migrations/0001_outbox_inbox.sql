-- Transactional outbox: a service writes its state change and its event in
-- one transaction; the relay publishes rows in id order and marks them only
-- on a successful delivery report.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    event_id       uuid        NOT NULL UNIQUE,
    topic          text        NOT NULL,
    aggregate_key  text        NOT NULL,
    payload        bytea       NOT NULL,
    trace_context  jsonb       NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);
-- The relay only ever scans what is still pending.
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

-- Inbox: the event ids a consumer has applied, written in the same
-- transaction as the change they caused, so a redelivery is dropped.
CREATE TABLE inbox (
    event_id       uuid        PRIMARY KEY,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    "offset"       bigint      NOT NULL,
    aggregate_key  text        NOT NULL,
    event_type     text        NOT NULL,
    applied_at     timestamptz NOT NULL DEFAULT now()
);

-- Records that could not be decoded or that a handler refused for good:
-- kept with the reason, never silently skipped.
CREATE TABLE dead_letter (
    id               bigserial PRIMARY KEY,
    topic            text        NOT NULL,
    partition        integer     NOT NULL,
    "offset"         bigint      NOT NULL,
    record_key       text,
    payload          bytea,
    headers          jsonb       NOT NULL DEFAULT '{}',
    reason           text        NOT NULL,
    dead_lettered_at timestamptz NOT NULL DEFAULT now(),
    retried_at       timestamptz,
    UNIQUE (topic, partition, "offset")
);
