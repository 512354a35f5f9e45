-- Up Migration
-- Arbiter's audit store. Tables named here are a public interface: analysts query them.
-- Append-only tables are time-partitioned by month (see arbiter.ensure_partitions) and
-- indexed by (resource, time). Mutable working state lives in separate *_state tables.

CREATE SCHEMA IF NOT EXISTS arbiter;

-- Every request as received (append-only).
CREATE TABLE arbiter.requests (
  request_id        uuid        NOT NULL,
  agent_id          text        NOT NULL,
  resource_arn      text        NOT NULL,
  scope             text        NOT NULL,
  action            text        NOT NULL,
  params            jsonb       NOT NULL DEFAULT '{}',
  expected_version  bigint,
  depends_on        text[]      NOT NULL DEFAULT '{}',
  plan_id           text,
  step              integer,
  deadline          timestamptz,
  reason            text,
  incident_id       text,
  requested_at      timestamptz NOT NULL,
  received_at       timestamptz NOT NULL DEFAULT now(),
  topic             text        NOT NULL,
  kafka_partition   integer     NOT NULL,
  kafka_offset      bigint      NOT NULL,
  -- Set when the producer keyed the record by something other than its scope and the worker moved it.
  rerouted_from     integer
) PARTITION BY RANGE (received_at);
CREATE INDEX requests_resource_time ON arbiter.requests (resource_arn, received_at);
CREATE INDEX requests_request_id ON arbiter.requests (request_id);

-- Every decision (append-only): final ones and progress (ACCEPTED, DEFERRED, REROUTED).
CREATE TABLE arbiter.decisions (
  request_id          uuid        NOT NULL,
  agent_id            text        NOT NULL,
  resource_arn        text        NOT NULL,
  scope               text        NOT NULL,
  action              text        NOT NULL,
  status              text        NOT NULL,
  final               boolean     NOT NULL,
  primary_request_id  uuid,
  resource_version    bigint,
  fencing_token       bigint,
  detail              text,
  worker_id           text,
  latency_ms          double precision,
  decided_at          timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (decided_at);
CREATE INDEX decisions_resource_time ON arbiter.decisions (resource_arn, decided_at);
CREATE INDEX decisions_request_id ON arbiter.decisions (request_id);
CREATE INDEX decisions_status_time ON arbiter.decisions (status, decided_at);

-- Execution phases (append-only): started, then succeeded | failed | recovered.
-- A 'started' row with nothing after it is an execution a worker died in.
CREATE TABLE arbiter.executions (
  request_id        uuid        NOT NULL,
  resource_arn      text        NOT NULL,
  scope             text        NOT NULL,
  action            text        NOT NULL,
  agent_id          text        NOT NULL,
  phase             text        NOT NULL CHECK (phase IN ('started', 'succeeded', 'failed', 'recovered', 'abandoned')),
  fencing_token     bigint,
  resource_version  bigint,
  detail            text,
  worker_id         text,
  at                timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (at);
CREATE INDEX executions_resource_time ON arbiter.executions (resource_arn, at);
CREATE INDEX executions_request_id ON arbiter.executions (request_id);

-- Records that could not be decoded (append-only), with their raw bytes.
CREATE TABLE arbiter.dead_letters (
  topic            text        NOT NULL,
  kafka_partition  integer     NOT NULL,
  kafka_offset     bigint      NOT NULL,
  record_key       bytea,
  record_value     bytea,
  headers          jsonb       NOT NULL DEFAULT '{}',
  error_code       text        NOT NULL,
  error            text        NOT NULL,
  worker_id        text,
  recorded_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, kafka_partition, kafka_offset)
);

-- Every lock event (append-only): acquired, acquire_failed, renewed, released, expired, fenced.
CREATE TABLE arbiter.lock_events (
  resource_arn   text        NOT NULL,
  event          text        NOT NULL CHECK (event IN ('acquired', 'acquire_failed', 'renewed', 'released', 'expired', 'fenced', 'lost')),
  owner          text        NOT NULL,
  agent_id       text,
  fencing_token  bigint,
  -- For acquire_failed: who held it.
  holder_owner   text,
  holder_agent   text,
  ttl_ms         integer,
  detail         text,
  at             timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (at);
CREATE INDEX lock_events_resource_time ON arbiter.lock_events (resource_arn, at);
CREATE INDEX lock_events_event_time ON arbiter.lock_events (event, at);

-- Current leases (working state). A row stays after release so fencing tokens never go backwards.
CREATE TABLE arbiter.locks (
  resource_arn   text        PRIMARY KEY,
  owner          text,
  agent_id       text,
  fencing_token  bigint      NOT NULL DEFAULT 0,
  acquired_at    timestamptz,
  renewed_at     timestamptz,
  expires_at     timestamptz
);

-- Working state of each request, one row per requestId: the idempotency key, the durable
-- queue a new partition owner recovers from, and the outcome outbox (outcome_published).
CREATE TABLE arbiter.request_state (
  request_id          uuid        PRIMARY KEY,
  scope               text        NOT NULL,
  -- The partition that owns the request is (topic, kafka_partition): installations sharing a database stay apart.
  topic               text        NOT NULL,
  kafka_partition     integer     NOT NULL,
  resource_arn        text        NOT NULL,
  action              text        NOT NULL,
  agent_id            text        NOT NULL,
  coalesce_key        text        NOT NULL,
  status              text        NOT NULL,
  final               boolean     NOT NULL DEFAULT false,
  primary_request_id  uuid,
  resource_version    bigint,
  fencing_token       bigint,
  detail              text,
  request             jsonb       NOT NULL,
  received_at         timestamptz NOT NULL DEFAULT now(),
  finished_at         timestamptz,
  outcome_published   boolean     NOT NULL DEFAULT false
);
CREATE INDEX request_state_open ON arbiter.request_state (topic, kafka_partition, received_at) WHERE NOT final OR NOT outcome_published;
CREATE INDEX request_state_recent ON arbiter.request_state (topic, kafka_partition, finished_at) WHERE final;
CREATE INDEX request_state_primary ON arbiter.request_state (primary_request_id) WHERE primary_request_id IS NOT NULL;

-- What Arbiter believes about each resource after its last committed change.
CREATE TABLE arbiter.resource_state (
  resource_arn     text        PRIMARY KEY,
  scope            text        NOT NULL,
  version          bigint      NOT NULL,
  expected_state   jsonb,
  last_request_id  uuid,
  last_action      text,
  last_agent_id    text,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Observed state reported by agents or executors (append-only).
CREATE TABLE arbiter.observations (
  resource_arn  text        NOT NULL,
  source        text        NOT NULL,
  version       bigint,
  state         jsonb,
  observed_at   timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (observed_at);
CREATE INDEX observations_resource_time ON arbiter.observations (resource_arn, observed_at);

-- Inconsistent state found by detection (append-only).
CREATE TABLE arbiter.inconsistencies (
  resource_arn  text        NOT NULL,
  scope         text,
  kind          text        NOT NULL,
  expected      jsonb,
  observed      jsonb,
  request_ids   uuid[]      NOT NULL DEFAULT '{}',
  detail        text,
  detected_at   timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (detected_at);
CREATE INDEX inconsistencies_resource_time ON arbiter.inconsistencies (resource_arn, detected_at);

-- Monthly partitions: a default partition catches anything outside the created range,
-- so an insert never fails because a partition is missing.
CREATE FUNCTION arbiter.ensure_partitions(months_ahead integer DEFAULT 2) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  parent text;
  month date;
  part text;
BEGIN
  FOREACH parent IN ARRAY ARRAY['requests', 'decisions', 'executions', 'lock_events', 'observations', 'inconsistencies'] LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS arbiter.%I PARTITION OF arbiter.%I DEFAULT', parent || '_default', parent);
    FOR i IN 0..months_ahead LOOP
      month := (date_trunc('month', now()) + make_interval(months => i))::date;
      part := parent || '_' || to_char(month, 'YYYY_MM');
      IF to_regclass('arbiter.' || part) IS NULL THEN
        EXECUTE format('CREATE TABLE arbiter.%I PARTITION OF arbiter.%I FOR VALUES FROM (%L) TO (%L)',
                       part, parent, month, (month + interval '1 month')::date);
      END IF;
    END LOOP;
  END LOOP;
END $$;

SELECT arbiter.ensure_partitions(2);
