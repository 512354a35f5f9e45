-- Up Migration
-- Views for analysts, and a read-only role that can see only the audit trail.

-- Everything that happened to a resource, in order.
CREATE VIEW arbiter.resource_timeline AS
  SELECT resource_arn, received_at AS at, 'request' AS kind, action, agent_id, request_id,
         NULL::text AS status, reason AS detail
    FROM arbiter.requests
  UNION ALL
  SELECT resource_arn, decided_at, 'decision', action, agent_id, request_id, status, detail
    FROM arbiter.decisions
  UNION ALL
  SELECT resource_arn, at, 'execution', action, agent_id, request_id, phase, detail
    FROM arbiter.executions
  UNION ALL
  SELECT resource_arn, at, 'lock', NULL, agent_id, NULL, event, detail
    FROM arbiter.lock_events
  UNION ALL
  SELECT resource_arn, detected_at, 'inconsistency', NULL, NULL, NULL, kind, detail
    FROM arbiter.inconsistencies;

-- Who raced whom for which lock.
CREATE VIEW arbiter.lock_contention AS
  SELECT resource_arn,
         coalesce(agent_id, owner) AS waiting,
         coalesce(holder_agent, holder_owner) AS holding,
         count(*) AS failed_acquires,
         min(at) AS first_at,
         max(at) AS last_at
    FROM arbiter.lock_events
   WHERE event = 'acquire_failed'
   GROUP BY 1, 2, 3;

-- Locks that expired unreleased: an agent or an action overran its budget.
CREATE VIEW arbiter.ttl_expirations AS
  SELECT resource_arn, owner, agent_id, fencing_token, ttl_ms, detail, at
    FROM arbiter.lock_events
   WHERE event = 'expired';

-- How many duplicates each executed request absorbed.
CREATE VIEW arbiter.coalescing AS
  SELECT d.primary_request_id, d.resource_arn, d.action,
         count(*) AS coalesced,
         array_agg(DISTINCT d.agent_id) AS agents,
         min(d.decided_at) AS first_at,
         max(d.decided_at) AS last_at
    FROM arbiter.decisions d
   WHERE d.status = 'COALESCED'
   GROUP BY 1, 2, 3;

-- Stale and conflicting requests that were turned away.
CREATE VIEW arbiter.conflicts AS
  SELECT request_id, resource_arn, action, agent_id, status, resource_version, detail, decided_at
    FROM arbiter.decisions
   WHERE status IN ('REJECTED_STALE', 'REJECTED_CONFLICT');

CREATE VIEW arbiter.final_outcomes AS
  SELECT DISTINCT ON (request_id) *
    FROM arbiter.decisions
   WHERE final
   ORDER BY request_id, decided_at;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'arbiter_readonly') THEN
    CREATE ROLE arbiter_readonly NOLOGIN;
  END IF;
END $$;
GRANT USAGE ON SCHEMA arbiter TO arbiter_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA arbiter TO arbiter_readonly;
ALTER DEFAULT PRIVILEGES IN SCHEMA arbiter GRANT SELECT ON TABLES TO arbiter_readonly;
