-- The hub's live replicas: each department's rate limit is shared among
-- them (R-VER-3), so two hubs never ask a department at twice its rate.
-- Liveness is read off the database's clock, the one clock every replica
-- shares.
CREATE TABLE hub_replica (
    replica_id uuid        PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);
