-- Up Migration
-- Plans: ordered graphs of steps (each a remediation request). Their state lives here; a step is
-- published only through arbiter.plan_outbox, written in the same transaction as the state change
-- that released it, and relayed to Kafka by `arbiter relay` (see docs/PLANS.md).

CREATE TABLE arbiter.plans (
  plan_id            uuid        PRIMARY KEY,
  agent_id           text        NOT NULL,
  status             text        NOT NULL,
  detail             text,
  deadline           timestamptz,
  reason             text,
  incident_id        text,
  -- Set when Arbiter made the plan to satisfy a request's precondition (a node drain's evictions).
  parent_request_id  uuid,
  -- An agent's cancellation, taken by the relay on its next pass.
  cancel_requested   jsonb,
  next_seq           bigint      NOT NULL DEFAULT 1,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  finished_at        timestamptz
);
CREATE INDEX plans_running ON arbiter.plans (deadline) WHERE status = 'RUNNING';
CREATE INDEX plans_created ON arbiter.plans (created_at);

CREATE TABLE arbiter.plan_steps (
  plan_id        uuid        NOT NULL REFERENCES arbiter.plans ON DELETE CASCADE,
  step           integer     NOT NULL,
  request_id     uuid        NOT NULL UNIQUE,
  action         text        NOT NULL,
  resource_arn   text        NOT NULL,
  params         jsonb       NOT NULL DEFAULT '{}',
  after_steps    integer[]   NOT NULL DEFAULT '{}',
  status         text        NOT NULL,
  detail         text,
  released_at    timestamptz,
  finished_at    timestamptz,
  PRIMARY KEY (plan_id, step)
);
-- The relay's question on every pass: which released steps have an outcome now?
CREATE INDEX plan_steps_released ON arbiter.plan_steps (request_id) WHERE status = 'RELEASED';

-- Every state change of a plan, in order: what `arbiter plan status` shows and what agents subscribe to.
CREATE TABLE arbiter.plan_events (
  plan_id      uuid        NOT NULL REFERENCES arbiter.plans ON DELETE CASCADE,
  seq          bigint      NOT NULL,
  type         text        NOT NULL,
  plan_status  text        NOT NULL,
  step         integer,
  request_id   uuid,
  step_status  text,
  detail       text,
  at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (plan_id, seq)
);

-- The transactional outbox: step requests and plan events waiting to be published, in id order.
CREATE TABLE arbiter.plan_outbox (
  id            bigserial   PRIMARY KEY,
  plan_id       uuid        NOT NULL,
  kind          text        NOT NULL CHECK (kind IN ('request', 'event')),
  payload       jsonb       NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz
);
CREATE INDEX plan_outbox_unpublished ON arbiter.plan_outbox (id) WHERE published_at IS NULL;

-- Analysts: one row per plan with its progress.
CREATE VIEW arbiter.plan_progress AS
SELECT p.plan_id, p.agent_id, p.status, p.detail, p.parent_request_id, p.created_at, p.finished_at,
       count(s.*)                                        AS steps,
       count(s.*) FILTER (WHERE s.status = 'EXECUTED')   AS executed,
       count(s.*) FILTER (WHERE s.status = 'RELEASED')   AS running,
       count(s.*) FILTER (WHERE s.status = 'CANCELLED')  AS cancelled
  FROM arbiter.plans p LEFT JOIN arbiter.plan_steps s USING (plan_id)
 GROUP BY p.plan_id;
