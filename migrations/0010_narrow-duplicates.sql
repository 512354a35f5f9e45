-- Up Migration
-- A coalesced duplicate costs one narrow row (issue 12).
--
-- Duplicates dominate every incident storm. Until now each was written three times: a working-state
-- row with a copy of the request (request_state), the request (requests) and its decision
-- (decisions). Now a duplicate is one row of arbiter.duplicates: its identity, where it came from,
-- the primary it joined, and the request fields agents actually set (NULL costs nothing). The
-- primary's row holds the rest: a duplicate's answer is its primary's, so the decision's version,
-- token and detail are derived from the primary when read.
--
-- The public names stay: arbiter.requests and arbiter.decisions become views over the physical
-- tables (request_log, decision_log: primaries and every other decision, as before) plus the
-- narrow rows, so an analyst's query and every analyst view give the same answers as before.

-- 1. The physical tables take new names; their partitions follow (upkeep finds them by name).
ALTER TABLE arbiter.requests RENAME TO request_log;
ALTER TABLE arbiter.decisions RENAME TO decision_log;
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT c.relname, p.relname AS parent
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_class p ON p.oid = i.inhparent
     WHERE p.relnamespace = 'arbiter'::regnamespace AND p.relname IN ('request_log', 'decision_log')
  LOOP
    EXECUTE format('ALTER TABLE arbiter.%I RENAME TO %I', r.relname,
                   r.parent || substr(r.relname, length(CASE r.parent WHEN 'request_log' THEN 'requests' ELSE 'decisions' END) + 1));
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION arbiter.partitioned_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT ARRAY['request_log', 'decision_log', 'executions', 'lock_events', 'observations', 'inconsistencies']
$$;

-- 2. The narrow row. Not partitioned: request_id is the idempotency key of a duplicate, as
-- request_state's is of every other request (a request id is in exactly one of the two).
CREATE TABLE arbiter.duplicates (
  request_id          uuid             PRIMARY KEY,
  primary_request_id  uuid             NOT NULL,
  -- Merged while the primary was pending: told the primary's result when it ended (the primary's
  -- outbox flag covers this answer too). Otherwise answered on arrival, before the offset commit.
  in_flight           boolean          NOT NULL,
  agent_id            text             NOT NULL,
  resource_arn        text             NOT NULL,
  scope               text             NOT NULL,
  action              text             NOT NULL,
  requested_at        timestamptz      NOT NULL,
  received_at         timestamptz      NOT NULL DEFAULT now(),
  topic               text             NOT NULL,
  kafka_partition     integer          NOT NULL,
  kafka_offset        bigint           NOT NULL,
  latency_ms          double precision,
  worker_id           text,
  -- The rest of the request, only where the agent set it.
  params              jsonb,
  expected_version    bigint,
  depends_on          text[],
  plan_id             text,
  step                integer,
  deadline            timestamptz,
  reason              text,
  incident_id         text,
  rerouted_from       integer
);
-- In-flight duplicates by primary: what recovery and the outbox sweep republish with a primary.
CREATE INDEX duplicates_in_flight ON arbiter.duplicates (primary_request_id) WHERE in_flight;
-- What analysts filter by. (Retention deletes by received_at once per upkeep without an index:
-- one more index would cost every duplicate of every storm.)
CREATE INDEX duplicates_resource_time ON arbiter.duplicates (resource_arn, received_at);

-- Append-only, like the rest of the audit trail; retention deletes old rows as the owner.
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON arbiter.duplicates
  FOR EACH ROW EXECUTE FUNCTION arbiter.refuse_audit_rewrite();
ALTER TABLE arbiter.duplicates OWNER TO arbiter_migrator;
GRANT SELECT, INSERT ON arbiter.duplicates TO arbiter_worker;

-- 3. The views every reader used to get from the tables. Views that read the tables (analyst
-- views, written against the old names) now point at the physical tables; they are re-pointed at
-- the new views below, from their own definitions, so none is copied here.
CREATE TEMPORARY TABLE readers_to_repoint ON COMMIT DROP AS
  SELECT DISTINCT v.oid::regclass AS view
    FROM pg_depend d
    JOIN pg_rewrite w ON w.oid = d.objid
    JOIN pg_class v ON v.oid = w.ev_class
   WHERE d.classid = 'pg_rewrite'::regclass
     AND d.refobjid IN ('arbiter.request_log'::regclass, 'arbiter.decision_log'::regclass)
     AND v.relkind = 'v';

CREATE VIEW arbiter.requests AS
  SELECT request_id, agent_id, resource_arn, scope, action, params, expected_version, depends_on, plan_id, step,
         deadline, reason, incident_id, requested_at, received_at, topic, kafka_partition, kafka_offset, rerouted_from
    FROM arbiter.request_log
  UNION ALL
  SELECT request_id, agent_id, resource_arn, scope, action, coalesce(params, '{}'), expected_version, coalesce(depends_on, '{}'),
         plan_id, step, deadline, reason, incident_id, requested_at, received_at, topic, kafka_partition, kafka_offset, rerouted_from
    FROM arbiter.duplicates;
COMMENT ON VIEW arbiter.requests IS 'Every request as received: primaries and others (request_log) and coalesced duplicates (duplicates).';

-- What a duplicate was told on arrival: "in flight" while its primary was pending, else the
-- primary's result (followerDecision in src/contract/decision.ts says the same).
CREATE VIEW arbiter.decisions AS
  SELECT request_id, agent_id, resource_arn, scope, action, status, final, primary_request_id, resource_version, fencing_token,
         detail, worker_id, latency_ms, decided_at, rule
    FROM arbiter.decision_log
  UNION ALL
  SELECT d.request_id, d.agent_id, d.resource_arn, d.scope, d.action, 'COALESCED'::text, true, d.primary_request_id,
         CASE WHEN NOT d.in_flight THEN p.resource_version END,
         CASE WHEN NOT d.in_flight THEN p.fencing_token END,
         CASE WHEN d.in_flight THEN format('coalesced into %s, in flight', d.primary_request_id)
              ELSE format('coalesced into %s, which ended %s%s', d.primary_request_id, p.status, ': ' || nullif(p.detail, '')) END,
         d.worker_id, d.latency_ms, d.received_at, 'coalesce'::text
    FROM arbiter.duplicates d
    LEFT JOIN arbiter.request_state p ON p.request_id = d.primary_request_id;
COMMENT ON VIEW arbiter.decisions IS 'Every decision: decision_log, and one COALESCED decision per duplicate (derived from its primary).';

-- Where a request stands, whichever table holds it: for dependencies, plans and detection.
CREATE VIEW arbiter.request_status AS
  SELECT request_id, final, status, detail, primary_request_id FROM arbiter.request_state
  UNION ALL
  SELECT request_id, true, 'COALESCED'::text, NULL::text, primary_request_id FROM arbiter.duplicates;

DO $$
DECLARE
  r record;
  definition text;
BEGIN
  -- Qualified names in the definitions (arbiter is not on this path).
  PERFORM set_config('search_path', 'pg_catalog', true);
  FOR r IN SELECT view FROM readers_to_repoint LOOP
    definition := pg_get_viewdef(r.view);
    definition := regexp_replace(definition, '\mrequest_log\M', 'requests', 'g');
    definition := regexp_replace(definition, '\mdecision_log\M', 'decisions', 'g');
    EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', r.view, definition);
  END LOOP;
END $$;

ALTER VIEW arbiter.requests OWNER TO arbiter_migrator;
ALTER VIEW arbiter.decisions OWNER TO arbiter_migrator;
ALTER VIEW arbiter.request_status OWNER TO arbiter_migrator;
GRANT SELECT ON arbiter.requests, arbiter.decisions, arbiter.request_status TO arbiter_worker;
-- The legacy read-only role of 0002 sees what it saw.
GRANT SELECT ON arbiter.duplicates, arbiter.requests, arbiter.decisions, arbiter.request_status TO arbiter_readonly;

-- 4. Retention: duplicates go with the audit partitions of their month (drop_old_partitions).
CREATE OR REPLACE FUNCTION arbiter.drop_old_duplicates(keep interval) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH gone AS (DELETE FROM arbiter.duplicates WHERE received_at < (now() - keep)::date RETURNING 1) SELECT count(*) FROM gone
$$;
ALTER FUNCTION arbiter.drop_old_duplicates(interval) OWNER TO arbiter_migrator;
REVOKE EXECUTE ON FUNCTION arbiter.drop_old_duplicates(interval) FROM PUBLIC;
