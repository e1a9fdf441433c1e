-- Every department's records in one table: the simulator renders each
-- department's own wire format from it.
CREATE TABLE dept_record (
    department  text   NOT NULL,
    item        text   NOT NULL,
    person      text   NOT NULL,
    record_id   text   NOT NULL,
    source      text   NOT NULL,
    as_of       date   NOT NULL,
    amount_fen  bigint NOT NULL,
    quantity    bigint NOT NULL,
    attrs       jsonb  NOT NULL,
    PRIMARY KEY (department, record_id)
);
CREATE INDEX dept_record_person ON dept_record (department, person);
