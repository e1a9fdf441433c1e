-- The roster comparison's runs, as its ComparisonCompleted events tell
-- them: the candidate list points the office at the latest run covering
-- its division, whose list (b) (dibao households not registered poor) and
-- list (e) (flags wrong) are the office's to decide (R-CMP-3).
CREATE TABLE comparison_run (
    run_id          text        PRIMARY KEY,
    division        text        NOT NULL,
    -- Leading digits of every village in the division ('' for the whole province).
    scope           text        NOT NULL,
    completed_at    timestamptz NOT NULL,
    dibao_not_poor  bigint      NOT NULL,
    flag_mismatches bigint      NOT NULL
);
CREATE INDEX comparison_run_latest ON comparison_run (scope, completed_at DESC);
