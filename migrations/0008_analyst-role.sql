-- Up Migration
-- The analysts' side (docs/AUDIT.md): row-level views that the `arbiter audit` reports read, and a
-- role `arbiter_analyst` that may read the analyst views and nothing else — no table, so neither
-- request payloads (requests.params, request_state.request), nor dead-letter bytes, nor working
-- state. Views run with their owner's rights (no security_invoker), which is what lets the role
-- read the audit trail through them. No view here selects a payload column.
--
-- The role is created NOLOGIN and without a password: `arbiter migrate` gives it LOGIN and the
-- password of config audit.analystPassword (ARBITER_ANALYST_PASSWORD), or NOLOGIN when that is null.
-- Roles belong to the server, grants to each database: several databases on one server (one per
-- installation, or per test) each run this, so the role is created only if missing.

-- Everything that happened to a resource, in order: 0002's view, now with observations, the holder
-- in a failed acquire, fencing tokens, versions and a reference (appended columns only, so queries
-- written against 0002's columns keep working).
--   resource_version: a request's expected version, a decision's or execution's resulting version,
--                     an observation's observed version;
--   ref:              a request's plan id, a decision's primary request, an execution's worker, a
--                     lock event's owner, a finding's id, an observation's id.
CREATE OR REPLACE VIEW arbiter.resource_timeline AS
  SELECT resource_arn, received_at AS at, 'request' AS kind, action, agent_id, request_id,
         NULL::text AS status, reason AS detail,
         NULL::bigint AS fencing_token, expected_version AS resource_version, plan_id AS ref
    FROM arbiter.requests
  UNION ALL
  SELECT resource_arn, decided_at, 'decision', action, agent_id, request_id, status, detail,
         fencing_token, resource_version, primary_request_id::text
    FROM arbiter.decisions
  UNION ALL
  SELECT resource_arn, at, 'execution', action, agent_id, request_id, phase, detail,
         fencing_token, resource_version, worker_id
    FROM arbiter.executions
  UNION ALL
  SELECT resource_arn, at, 'lock', NULL, agent_id, NULL, event,
         CASE WHEN event = 'acquire_failed' THEN concat_ws('; ', 'held by ' || coalesce(holder_agent, holder_owner), detail) ELSE detail END,
         fencing_token, NULL, owner
    FROM arbiter.lock_events
  UNION ALL
  SELECT resource_arn, detected_at, 'inconsistency', NULL, NULL, NULL, kind, detail,
         NULL, NULL, finding_id::text
    FROM arbiter.inconsistencies
  UNION ALL
  SELECT resource_arn, observed_at, 'observation', NULL, NULL, NULL, source, NULL,
         NULL, version, observation_id::text
    FROM arbiter.observations;

-- One row per failed lock acquisition: who waited, who held (an agent, else the lock owner: a
-- worker id or agent:<id>). From every path that takes locks: workers, the SDK, `arbiter lock`.
CREATE VIEW arbiter.lock_contention_events AS
  SELECT at, resource_arn,
         coalesce(agent_id, owner)            AS waiting,
         owner                                AS waiting_owner,
         coalesce(holder_agent, holder_owner) AS holding,
         holder_owner                         AS holding_owner,
         fencing_token                        AS holder_fencing_token,
         ttl_ms                               AS requested_ttl_ms
    FROM arbiter.lock_events
   WHERE event = 'acquire_failed';

-- Contention by agent pair (holder, waiter), over all time and resources.
CREATE VIEW arbiter.lock_contention_pairs AS
  SELECT holding, waiting,
         count(*)                     AS failed_acquires,
         count(DISTINCT resource_arn) AS resources,
         min(at)                      AS first_at,
         max(at)                      AS last_at
    FROM arbiter.lock_contention_events
   GROUP BY holding, waiting;

-- Each lock that expired unreleased, joined to its own 'acquired' event (same resource and fencing
-- token) and renewals: how long the holder had it against the TTL it asked for.
--   expires_at: when the lease ran out (last renewal, else the acquisition, plus the lease's TTL);
--   held_ms:    acquisition to expires_at — how long the holder held it before it lapsed;
--   reaped_ms:  expires_at to expired_at — how long until Arbiter recorded the expiry (the reaper,
--               or the next acquire that found it);
--   ttl_ms:     the TTL asked for at acquisition; last_ttl_ms: the lease's TTL when it ran out.
CREATE VIEW arbiter.ttl_expiration_durations AS
  SELECT x.at                                 AS expired_at,
         x.resource_arn,
         coalesce(x.agent_id, x.owner)        AS agent,
         x.owner,
         x.fencing_token,
         a.at                                 AS acquired_at,
         coalesce(a.ttl_ms, x.ttl_ms)         AS ttl_ms,
         x.ttl_ms                             AS last_ttl_ms,
         coalesce(r.renewals, 0)              AS renewals,
         r.last_renewed_at,
         e.expires_at,
         round(EXTRACT(EPOCH FROM (e.expires_at - a.at)) * 1000)::bigint   AS held_ms,
         round(EXTRACT(EPOCH FROM (x.at - e.expires_at)) * 1000)::bigint   AS reaped_ms,
         x.detail
    FROM arbiter.lock_events x
    LEFT JOIN LATERAL (
      SELECT at, ttl_ms FROM arbiter.lock_events
       WHERE resource_arn = x.resource_arn AND event = 'acquired' AND fencing_token = x.fencing_token AND at <= x.at
       ORDER BY at DESC LIMIT 1) a ON true
    LEFT JOIN LATERAL (
      SELECT count(*) AS renewals, max(at) AS last_renewed_at FROM arbiter.lock_events
       WHERE resource_arn = x.resource_arn AND event = 'renewed' AND fencing_token = x.fencing_token AND at <= x.at) r ON true
    LEFT JOIN LATERAL (
      SELECT coalesce(r.last_renewed_at, a.at) + make_interval(secs => x.ttl_ms / 1000.0) AS expires_at) e ON true
   WHERE x.event = 'expired';

-- Findings of the inconsistency detector with their status and evidence. `agents` gathers the
-- agents the evidence names (evidence.agents) and those of the requests it names (request_ids).
CREATE VIEW arbiter.inconsistency_findings AS
  SELECT i.finding_id, i.detected_at, i.resource_arn, i.scope, i.kind, i.status, i.detail,
         i.evidence, i.expected, i.observed, i.request_ids,
         ARRAY(SELECT DISTINCT a FROM (
                 SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(i.evidence -> 'agents') = 'array'
                                                       THEN i.evidence -> 'agents' ELSE '[]'::jsonb END) AS a
                 UNION
                 SELECT d.agent_id FROM arbiter.decisions d WHERE d.request_id = ANY (i.request_ids)
               ) named
                WHERE a IS NOT NULL
                ORDER BY a) AS agents,
         i.acknowledged_by, i.acknowledged_at, i.resolved_at, i.note
    FROM arbiter.inconsistencies i;

-- One row per request coalesced into another, with the agent of the request it joined.
CREATE VIEW arbiter.coalesced_requests AS
  SELECT d.decided_at, d.request_id, d.agent_id, d.resource_arn, d.action,
         d.primary_request_id, p.agent_id AS primary_agent_id
    FROM arbiter.decisions d
    LEFT JOIN LATERAL (
      SELECT agent_id FROM arbiter.decisions
       WHERE request_id = d.primary_request_id
       ORDER BY decided_at LIMIT 1) p ON true
   WHERE d.status = 'COALESCED';

-- 0002's conflicts, now naming the rival where it can be derived (appended columns):
--   REJECTED_CONFLICT: the request named in the detail ("… by <agent> (request <id>) …");
--   REJECTED_STALE:    the executed change that produced the version the resource was at.
-- An out-of-band change (no Arbiter decision produced that version) leaves the rival empty.
CREATE OR REPLACE VIEW arbiter.conflicts AS
  SELECT c.request_id, c.resource_arn, c.action, c.agent_id, c.status, c.resource_version, c.detail, c.decided_at,
         coalesce(by_id.request_id, by_version.request_id) AS rival_request_id,
         coalesce(by_id.agent_id, by_version.agent_id)     AS rival_agent_id,
         coalesce(by_id.action, by_version.action)         AS rival_action
    FROM arbiter.decisions c
    LEFT JOIN LATERAL (
      SELECT (regexp_match(c.detail, '\(request ([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)'))[1]::uuid AS id
    ) named ON true
    LEFT JOIN LATERAL (
      SELECT request_id, agent_id, action FROM arbiter.decisions
       WHERE request_id = named.id AND final
       ORDER BY decided_at LIMIT 1) by_id ON true
    LEFT JOIN LATERAL (
      SELECT request_id, agent_id, action FROM arbiter.decisions
       WHERE named.id IS NULL AND c.status = 'REJECTED_STALE'
         AND resource_arn = c.resource_arn AND decided_at <= c.decided_at
         AND status = 'EXECUTED' AND final AND resource_version = c.resource_version
       ORDER BY decided_at DESC LIMIT 1) by_version ON true
   WHERE c.status IN ('REJECTED_STALE', 'REJECTED_CONFLICT');

-- What each agent asked, got, and whom it raced with: one row per fact, `other_agent` the rival.
--   requested          it sent a request (action)
--   outcome            its request's final decision (status)
--   coalesced_into     its request joined other_agent's identical one
--   absorbed           other_agent's request joined its own
--   rejected_after     its request was rejected (stale or conflict) after other_agent's change
--   caused_rejection   its change got other_agent's request rejected
--   lock_waited        it failed to acquire a lock other_agent held
--   lock_blocked       it held a lock other_agent failed to acquire
--   lock_expired       a lock it held expired unreleased
CREATE VIEW arbiter.agent_activity AS
  SELECT agent_id, received_at AS at, 'requested' AS activity, resource_arn, action,
         NULL::text AS status, NULL::text AS other_agent, request_id
    FROM arbiter.requests
  UNION ALL
  SELECT agent_id, decided_at, 'outcome', resource_arn, action, status, NULL, request_id
    FROM arbiter.decisions WHERE final
  UNION ALL
  SELECT agent_id, decided_at, 'coalesced_into', resource_arn, action, 'COALESCED', primary_agent_id, request_id
    FROM arbiter.coalesced_requests
  UNION ALL
  SELECT primary_agent_id, decided_at, 'absorbed', resource_arn, action, 'COALESCED', agent_id, primary_request_id
    FROM arbiter.coalesced_requests WHERE primary_agent_id IS NOT NULL
  UNION ALL
  SELECT agent_id, decided_at, 'rejected_after', resource_arn, action, status, rival_agent_id, request_id
    FROM arbiter.conflicts
  UNION ALL
  SELECT rival_agent_id, decided_at, 'caused_rejection', resource_arn, rival_action, status, agent_id, rival_request_id
    FROM arbiter.conflicts WHERE rival_agent_id IS NOT NULL
  UNION ALL
  SELECT waiting, at, 'lock_waited', resource_arn, NULL, NULL, holding, NULL
    FROM arbiter.lock_contention_events
  UNION ALL
  SELECT holding, at, 'lock_blocked', resource_arn, NULL, NULL, waiting, NULL
    FROM arbiter.lock_contention_events
  UNION ALL
  SELECT coalesce(agent_id, owner), at, 'lock_expired', resource_arn, NULL, NULL, NULL, NULL
    FROM arbiter.lock_events WHERE event = 'expired';

COMMENT ON VIEW arbiter.resource_timeline IS 'Everything that happened to a resource, in order (requests without params).';
COMMENT ON VIEW arbiter.lock_contention_events IS 'One row per failed lock acquisition: who waited, who held.';
COMMENT ON VIEW arbiter.lock_contention_pairs IS 'Failed lock acquisitions by (holding, waiting) agent pair.';
COMMENT ON VIEW arbiter.ttl_expiration_durations IS 'Locks that expired unreleased: held how long against which TTL.';
COMMENT ON VIEW arbiter.inconsistency_findings IS 'Inconsistency findings with status, evidence and the agents involved.';
COMMENT ON VIEW arbiter.coalesced_requests IS 'Requests coalesced into another, with the agent of the one they joined.';
COMMENT ON VIEW arbiter.conflicts IS 'Requests rejected stale or conflicting, with the rival change where derivable.';
COMMENT ON VIEW arbiter.agent_activity IS 'What each agent asked, got and whom it raced with: one row per fact.';

-- The narrow role. A concurrent migration of another database on the same server may create it
-- between the check and the CREATE: that is the same outcome, so its error is swallowed.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'arbiter_analyst') THEN
    CREATE ROLE arbiter_analyst NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END $$;

GRANT USAGE ON SCHEMA arbiter TO arbiter_analyst;
-- Every analyst view, by name: a view added later is granted by the migration that adds it.
GRANT SELECT ON
  arbiter.resource_timeline,
  arbiter.lock_contention,
  arbiter.lock_contention_events,
  arbiter.lock_contention_pairs,
  arbiter.ttl_expirations,
  arbiter.ttl_expiration_durations,
  arbiter.inconsistency_findings,
  arbiter.coalescing,
  arbiter.coalesced_requests,
  arbiter.conflicts,
  arbiter.agent_activity,
  arbiter.final_outcomes,
  arbiter.plan_progress
TO arbiter_analyst;
