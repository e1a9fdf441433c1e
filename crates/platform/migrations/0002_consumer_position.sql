-- Where the inbox resumes: the next offset per partition, written in the
-- same transaction as the events it applied, so position and effects never
-- disagree (no broker-side group state is needed to resume).
CREATE TABLE consumer_position (
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
