import type { Pool, PoolClient } from '../db/index.ts';
import type { FinalDecision } from '../contract/decision.ts';
import { releaseLeases, type ReleaseInput } from '../locks/index.ts';
import type { DecidedRequest, ExecutionRow, ResourceChange } from './rows.ts';
import { storableText } from './storable.ts';

/** One primary's end: its final decision, the execution phase that closes it, the resource's new version. */
export interface Finalization {
  decided: DecidedRequest & { decision: FinalDecision };
  execution?: ExecutionRow;
  resource?: ResourceChange;
  /**
   * The execution's lease, released in the same statement (Lease.handOff): the lock is held until
   * the decision is durable, and the release costs no statement of its own. Released whether or
   * not the decision is recorded (another owner's decision ends the execution as well).
   */
  release?: ReleaseInput;
}

/**
 * The final decisions of many primaries in one statement (one round trip, one commit, one plan):
 * under a storm thousands of executions end within seconds, and each paid a statement of its own.
 * A request_state row is updated only if it is not final yet, and every other row is written only
 * through that update (joined on the rows it returned), so a zombie owner racing the new one never
 * records a second final decision. The statement is prepared once per connection: its text never
 * changes, whichever parts a row has (the flags `has_execution`, `has_resource` select them).
 */
const FINALIZE_MANY = `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[],
                       $10::text[], $11::text[], $12::float8[], $13::boolean[], $14::text[], $15::bigint[], $16::text[], $17::boolean[],
                       $18::bigint[], $19::jsonb[], $21::bigint[], $22::text[], $23::text[], $24::bigint[])
    AS t(request_id, status, rule, primary_request_id, resource_version, fencing_token, detail, agent_id, resource_arn,
         scope, action, latency_ms, has_execution, execution_phase, execution_version, execution_detail, has_resource,
         new_version, expected_state, execution_token, lease_arn, lease_owner, lease_token)
),
leases AS (
  SELECT lease_arn AS resource_arn, lease_owner AS owner, lease_token AS fencing_token, NULL::text AS detail FROM input WHERE lease_owner IS NOT NULL
),
${releaseLeases('leases')},
s AS (
  UPDATE arbiter.request_state rs
     SET status = i.status, rule = i.rule, final = true, primary_request_id = i.primary_request_id, resource_version = i.resource_version,
         fencing_token = i.fencing_token, detail = i.detail, finished_at = now()
    FROM input i
   WHERE rs.request_id = i.request_id AND NOT rs.final
  RETURNING rs.request_id, rs.topic, rs.kafka_partition
),
-- The answer waits in the outbox until it is on Kafka (markPublished deletes the row).
o AS (
  INSERT INTO arbiter.outcome_outbox (request_id, topic, kafka_partition)
  SELECT request_id, topic, kafka_partition FROM s
),
done AS (SELECT i.* FROM input i JOIN s USING (request_id)),
d AS (
  INSERT INTO arbiter.decision_log (request_id, agent_id, resource_arn, scope, action, status, final, primary_request_id,
                                    resource_version, fencing_token, detail, latency_ms, rule, worker_id)
  SELECT request_id, agent_id, resource_arn, scope, action, status, true, primary_request_id,
         resource_version, fencing_token, detail, latency_ms, rule, $20::text
    FROM done
),
e AS (
  INSERT INTO arbiter.executions (request_id, resource_arn, scope, action, agent_id, phase, fencing_token, resource_version, detail, worker_id)
  SELECT request_id, resource_arn, scope, action, agent_id, execution_phase, execution_token, execution_version, execution_detail, $20::text
    FROM done WHERE has_execution
),
r AS (
  INSERT INTO arbiter.resource_state (resource_arn, scope, version, expected_state, last_request_id, last_action, last_agent_id, updated_at)
  SELECT resource_arn, scope, new_version, expected_state, request_id, action, agent_id, now()
    FROM done WHERE has_resource
  ON CONFLICT (resource_arn) DO UPDATE
    SET version = EXCLUDED.version, expected_state = EXCLUDED.expected_state, last_request_id = EXCLUDED.last_request_id,
        last_action = EXCLUDED.last_action, last_agent_id = EXCLUDED.last_agent_id, updated_at = now()
  -- A late writer never moves the version backwards.
  WHERE arbiter.resource_state.version <= EXCLUDED.version
)
SELECT request_id FROM s`;

/**
 * Writes the finalizations; resolves, in order, whether each was recorded (false: the request was
 * final already). One resource appears at most once: a statement cannot upsert a row twice (a
 * worker never ends two executions of one resource at once; the caller splits if it would).
 */
export async function finalizeMany(db: Pool | PoolClient, workerId: string, items: readonly Finalization[]): Promise<boolean[]> {
  if (!items.length) return [];
  const col = <T>(f: (x: Finalization) => T) => items.map(f);
  const { rows } = await db.query({
    name: 'arbiter_finalize_many',
    text: FINALIZE_MANY,
    values: [
      col((x) => x.decided.request.requestId),
      col((x) => x.decided.decision.status),
      col((x) => x.decided.decision.rule),
      col((x) => x.decided.decision.primaryRequestId ?? null),
      col((x) => x.decided.decision.resourceVersion ?? null),
      col((x) => x.decided.decision.fencingToken ?? null),
      col((x) => storableText(x.decided.decision.detail)),
      col((x) => storableText(x.decided.request.agentId, 1_024)),
      col((x) => storableText(x.decided.request.resourceArn, 4_096)),
      col((x) => storableText(x.decided.scope, 4_096)),
      col((x) => storableText(x.decided.request.action, 256)),
      col((x) => x.decided.latencyMs ?? null),
      col((x) => x.execution !== undefined),
      col((x) => x.execution?.phase ?? null),
      col((x) => x.execution?.resourceVersion ?? null),
      col((x) => x.execution?.detail ?? null),
      col((x) => x.resource !== undefined),
      col((x) => x.resource?.version ?? null),
      col((x) => (x.resource ? JSON.stringify(x.resource.expectedState ?? null) : null)),
      workerId,
      col((x) => x.execution?.fencingToken ?? null),
      col((x) => x.release?.resourceArn ?? null),
      col((x) => x.release?.owner ?? null),
      col((x) => x.release?.fencingToken ?? null),
    ],
  });
  const recorded = new Set(rows.map((r: { request_id: string }) => r.request_id));
  return items.map((x) => recorded.has(x.decided.request.requestId));
}
