-- Up Migration
-- The outbox of answers decided after arrival becomes a narrow table of its own (issue 12, ninth pass).
--
-- Until now a primary's answer waited on a flag of its request_state row, outcome_published: set
-- false when the request became final, true once its answer (and its in-flight followers') was on
-- Kafka. Setting the flag rewrote the whole row — the request's payload included — and, because the
-- flag was in the predicate of request_state_open, every one of its four indexes: PostgreSQL spent
-- ~276 µs on it per execution in the storm (pg_stat_statements, docs/BENCHMARKS.md, eighth pass).
--
-- Now finalisation inserts one narrow row here in the same statement that makes the request final,
-- and publishing deletes it: a delete marks the row dead and touches no index. A request is
-- published once it is final and has no row here. The table holds only answers in flight, so it
-- stays small; the outbox sweep reads it whole per partition (no index besides the key: one would
-- cost every execution an entry, for a sweep that finds nothing almost always).
CREATE TABLE arbiter.outcome_outbox (
  request_id       uuid        PRIMARY KEY,
  -- The partition that owns the request, as in request_state: its owner publishes it.
  topic            text        NOT NULL,
  kafka_partition  integer     NOT NULL,
  finished_at      timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE arbiter.outcome_outbox OWNER TO arbiter_migrator;
-- A queue: rows come and go (the audit trail keeps what was decided; this only what is unsent).
GRANT SELECT, INSERT, DELETE ON arbiter.outcome_outbox TO arbiter_worker;
GRANT SELECT ON arbiter.outcome_outbox TO arbiter_readonly;

-- Answers recorded but not yet published when this migration runs stay due.
INSERT INTO arbiter.outcome_outbox (request_id, topic, kafka_partition, finished_at)
SELECT request_id, topic, kafka_partition, coalesce(finished_at, now())
  FROM arbiter.request_state
 WHERE final AND NOT outcome_published;

-- The open requests a new owner recovers: the unpublished ones are found through the outbox now.
DROP INDEX arbiter.request_state_open;
CREATE INDEX request_state_open ON arbiter.request_state (topic, kafka_partition, received_at) WHERE NOT final;
ALTER TABLE arbiter.request_state DROP COLUMN outcome_published;

-- Forgets finished requests older than keep whose answer is out (their audit rows stay until their partitions go).
CREATE OR REPLACE FUNCTION arbiter.prune_request_state(keep interval) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH gone AS (
    DELETE FROM arbiter.request_state s
     WHERE s.final AND s.finished_at < now() - keep
       AND NOT EXISTS (SELECT 1 FROM arbiter.outcome_outbox o WHERE o.request_id = s.request_id)
    RETURNING 1
  ) SELECT count(*) FROM gone
$$;
