import type { Pool, PoolClient } from '../db/index.ts';
import { inTransaction } from '../db/index.ts';
import type { RemediationRequest } from '../contract/request.ts';
import type { DeadLetterRow, DecisionRow, ExecutionRow, OpenRequest, RequestRow, RequestStateRow } from './rows.ts';

type Queryable = Pool | PoolClient;

/**
 * Every write Arbiter makes to its audit trail and working state. Writes are batched with unnest()
 * so one Kafka batch costs a handful of round trips, whatever its size.
 */
export class AuditStore {
  constructor(
    readonly pool: Pool,
    private readonly workerId: string,
  ) {}

  /** Which of these requestIds have already been decided (redelivery after a crash or rebalance). */
  async knownRequestIds(ids: string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    const { rows } = await this.pool.query('SELECT request_id FROM arbiter.request_state WHERE request_id = ANY($1::uuid[])', [ids]);
    return new Set(rows.map((r) => r.request_id as string));
  }

  /**
   * Makes one batch's arrival decisions durable in one transaction. Request states are inserted
   * first with ON CONFLICT DO NOTHING; requests and decisions are only written for those that were
   * new, so a redelivered record never produces a second decision.
   */
  async recordArrivals(batch: {
    requests: RequestRow[];
    states: RequestStateRow[];
    decisions: DecisionRow[];
    deadLetters: DeadLetterRow[];
  }): Promise<Set<string>> {
    return inTransaction(this.pool, async (db) => {
      const fresh = await insertStates(db, batch.states);
      const isFresh = (id: string) => fresh.has(id);
      await insertRequests(db, batch.requests.filter((r) => isFresh(r.request.requestId)));
      // Decisions of requests that carry no state (reroutes) are always recorded.
      const stateIds = new Set(batch.states.map((s) => s.request.requestId));
      await this.insertDecisions(
        db,
        batch.decisions.filter((d) => !stateIds.has(d.requestId) || isFresh(d.requestId)),
      );
      await insertDeadLetters(db, batch.deadLetters, this.workerId);
      return fresh;
    });
  }

  async insertDecisions(db: Queryable, decisions: DecisionRow[]): Promise<void> {
    if (!decisions.length) return;
    const col = <K extends keyof DecisionRow>(k: K) => decisions.map((d) => d[k]);
    await db.query(
      `INSERT INTO arbiter.decisions (request_id, agent_id, resource_arn, scope, action, status, final, primary_request_id,
                                      resource_version, fencing_token, detail, latency_ms, worker_id)
       SELECT *, $13::text FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[],
                                  $8::uuid[], $9::bigint[], $10::bigint[], $11::text[], $12::float8[])`,
      [
        col('requestId'),
        col('agentId'),
        col('resourceArn'),
        col('scope'),
        col('action'),
        col('status'),
        col('final'),
        col('primaryRequestId'),
        col('resourceVersion'),
        col('fencingToken'),
        col('detail'),
        col('latencyMs'),
        this.workerId,
      ],
    );
  }

  async recordExecution(row: ExecutionRow, db: Queryable = this.pool): Promise<void> {
    await db.query(
      `INSERT INTO arbiter.executions (request_id, resource_arn, scope, action, agent_id, phase, fencing_token, resource_version, detail, worker_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [row.requestId, row.resourceArn, row.scope, row.action, row.agentId, row.phase, row.fencingToken, row.resourceVersion, row.detail, this.workerId],
    );
  }

  /** A progress decision (DEFERRED) on a queued request. */
  async recordProgress(decision: DecisionRow): Promise<void> {
    await inTransaction(this.pool, async (db) => {
      await this.insertDecisions(db, [decision]);
      await db.query('UPDATE arbiter.request_state SET status = $2, detail = $3 WHERE request_id = $1 AND NOT final', [
        decision.requestId,
        decision.status,
        decision.detail,
      ]);
    });
  }

  /**
   * The final decision of a primary, its finished execution phase and the resource's new version,
   * in one transaction. The request_state row is updated only if it is not final yet, so a zombie
   * owner racing the new one can never record a second final decision. Returns whether it recorded.
   */
  async finalize(input: {
    decisions: DecisionRow[];
    execution?: ExecutionRow;
    resource?: { arn: string; scope: string; version: number; expectedState: unknown; requestId: string; action: string; agentId: string };
  }): Promise<boolean> {
    return inTransaction(this.pool, async (db) => {
      const col = <K extends keyof DecisionRow>(k: K) => input.decisions.map((d) => d[k]);
      const { rows } = await db.query(
        `UPDATE arbiter.request_state s
            SET status = u.status, final = true, primary_request_id = u.primary_id, resource_version = u.version,
                fencing_token = u.token, detail = u.detail, finished_at = now()
           FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[])
                AS u(request_id, status, primary_id, version, token, detail)
          WHERE s.request_id = u.request_id AND NOT s.final
          RETURNING s.request_id`,
        [col('requestId'), col('status'), col('primaryRequestId'), col('resourceVersion'), col('fencingToken'), col('detail')],
      );
      const updated = new Set(rows.map((r) => r.request_id as string));
      if (!updated.size) return false;
      await this.insertDecisions(db, input.decisions.filter((d) => updated.has(d.requestId)));
      if (input.execution) await this.recordExecution(input.execution, db);
      if (input.resource) {
        const r = input.resource;
        await db.query(
          `INSERT INTO arbiter.resource_state (resource_arn, scope, version, expected_state, last_request_id, last_action, last_agent_id, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, now())
           ON CONFLICT (resource_arn) DO UPDATE
             SET version = EXCLUDED.version, expected_state = EXCLUDED.expected_state, last_request_id = EXCLUDED.last_request_id,
                 last_action = EXCLUDED.last_action, last_agent_id = EXCLUDED.last_agent_id, updated_at = now()`,
          [r.arn, r.scope, r.version, JSON.stringify(r.expectedState ?? null), r.requestId, r.action, r.agentId],
        );
      }
      return true;
    });
  }

  async markPublished(requestIds: string[]): Promise<void> {
    if (!requestIds.length) return;
    await this.pool.query('UPDATE arbiter.request_state SET outcome_published = true WHERE request_id = ANY($1::uuid[])', [requestIds]);
  }

  /** Requests of these partitions that are not final, or whose outcome was never published. */
  async loadOpen(topic: string, partitions: number[]): Promise<OpenRequest[]> {
    const { rows } = await this.pool.query(
      `${SELECT_STATE}
        WHERE s.topic = $2 AND s.kafka_partition = ANY($1::int[]) AND (NOT s.final OR NOT s.outcome_published)
        ORDER BY s.received_at`,
      [partitions, topic],
    );
    return rows.map(toOpenRequest);
  }

  /** The state of these requests, whatever it is (for records another owner decided). */
  async loadByIds(ids: string[]): Promise<OpenRequest[]> {
    if (!ids.length) return [];
    const { rows } = await this.pool.query(`${SELECT_STATE} WHERE s.request_id = ANY($1::uuid[]) ORDER BY s.received_at`, [ids]);
    return rows.map(toOpenRequest);
  }

  /** Executed requests of these partitions finished since `sinceMs`: coalescing windows and conflict history. */
  async loadRecentlyExecuted(topic: string, partitions: number[], sinceMs: number): Promise<OpenRequest[]> {
    const { rows } = await this.pool.query(
      `SELECT s.*, EXTRACT(EPOCH FROM s.received_at) * 1000 AS received_ms, EXTRACT(EPOCH FROM s.finished_at) * 1000 AS finished_ms,
              false AS execution_started
         FROM arbiter.request_state s
        WHERE s.topic = $3 AND s.kafka_partition = ANY($1::int[]) AND s.final AND s.status = 'EXECUTED'
          AND s.finished_at >= to_timestamp($2 / 1000.0)
        ORDER BY s.finished_at`,
      [partitions, sinceMs, topic],
    );
    return rows.map(toOpenRequest);
  }

  /** Final status of each dependency that has one. */
  async dependencyStatus(ids: string[]): Promise<Map<string, { final: boolean; status: string; primaryStatus: string | null }>> {
    const { rows } = await this.pool.query(
      `SELECT s.request_id, s.final, s.status, p.status AS primary_status
         FROM arbiter.request_state s LEFT JOIN arbiter.request_state p ON p.request_id = s.primary_request_id
        WHERE s.request_id = ANY($1::uuid[])`,
      [ids],
    );
    return new Map(rows.map((r) => [r.request_id, { final: r.final, status: r.status, primaryStatus: r.primary_status }]));
  }

  /** The recorded outcome of finished requests, for republishing what coalesced into them. */
  async finalStates(ids: string[]): Promise<Map<string, { status: string; resourceVersion: number | null; fencingToken: number | null; detail: string | null }>> {
    if (!ids.length) return new Map();
    const { rows } = await this.pool.query(
      'SELECT request_id, status, resource_version, fencing_token, detail FROM arbiter.request_state WHERE final AND request_id = ANY($1::uuid[])',
      [ids],
    );
    return new Map(
      rows.map((r) => [r.request_id, { status: r.status, resourceVersion: r.resource_version, fencingToken: r.fencing_token, detail: r.detail }]),
    );
  }

  async resourceVersion(arn: string): Promise<number | null> {
    const { rows } = await this.pool.query('SELECT version FROM arbiter.resource_state WHERE resource_arn = $1', [arn]);
    return rows[0] ? Number(rows[0].version) : null;
  }

  async recordInconsistency(row: {
    resourceArn: string;
    scope: string | null;
    kind: string;
    expected: unknown;
    observed: unknown;
    requestIds: string[];
    detail: string;
  }): Promise<void> {
    await this.pool.query(
      `INSERT INTO arbiter.inconsistencies (resource_arn, scope, kind, expected, observed, request_ids, detail)
       VALUES ($1, $2, $3, $4, $5, $6::uuid[], $7)`,
      [row.resourceArn, row.scope, row.kind, JSON.stringify(row.expected), JSON.stringify(row.observed), row.requestIds, row.detail],
    );
  }

  async recordObservation(arn: string, source: string, version: number | null, state: unknown): Promise<void> {
    await this.pool.query('INSERT INTO arbiter.observations (resource_arn, source, version, state) VALUES ($1, $2, $3, $4)', [
      arn,
      source,
      version,
      JSON.stringify(state),
    ]);
  }
}

const SELECT_STATE = `
  SELECT s.*, EXTRACT(EPOCH FROM s.received_at) * 1000 AS received_ms, EXTRACT(EPOCH FROM s.finished_at) * 1000 AS finished_ms,
         EXISTS (SELECT 1 FROM arbiter.executions e WHERE e.request_id = s.request_id AND e.phase = 'started')
     AND NOT EXISTS (SELECT 1 FROM arbiter.executions e WHERE e.request_id = s.request_id AND e.phase <> 'started') AS execution_started
    FROM arbiter.request_state s`;

function toOpenRequest(r: Record<string, unknown>): OpenRequest {
  return {
    request: r.request as RemediationRequest,
    scope: r.scope as string,
    partition: r.kafka_partition as number,
    coalesceKey: r.coalesce_key as string,
    status: r.status as string,
    final: r.final as boolean,
    primaryRequestId: (r.primary_request_id as string | null) ?? null,
    resourceVersion: r.resource_version === null ? null : Number(r.resource_version),
    fencingToken: r.fencing_token === null ? null : Number(r.fencing_token),
    detail: (r.detail as string | null) ?? null,
    receivedAt: Number(r.received_ms),
    finishedAt: r.finished_ms === null ? null : Number(r.finished_ms),
    outcomePublished: Boolean(r.outcome_published),
    executionStarted: Boolean(r.execution_started),
  };
}

async function insertStates(db: PoolClient, states: RequestStateRow[]): Promise<Set<string>> {
  if (!states.length) return new Set();
  const col = <T>(f: (s: RequestStateRow) => T) => states.map(f);
  const { rows } = await db.query(
    `INSERT INTO arbiter.request_state (request_id, scope, topic, kafka_partition, resource_arn, action, agent_id, coalesce_key, status, final,
                                        primary_request_id, resource_version, fencing_token, detail, request, finished_at)
     SELECT u.*, CASE WHEN u.final THEN now() END
       FROM unnest($1::uuid[], $2::text[], $15::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::boolean[],
                   $10::uuid[], $11::bigint[], $12::bigint[], $13::text[], $14::jsonb[])
         AS u(request_id, scope, topic, kafka_partition, resource_arn, action, agent_id, coalesce_key, status, final,
              primary_request_id, resource_version, fencing_token, detail, request)
     ON CONFLICT (request_id) DO NOTHING
     RETURNING request_id`,
    [
      col((s) => s.request.requestId),
      col((s) => s.scope),
      col((s) => s.partition),
      col((s) => s.request.resourceArn),
      col((s) => s.request.action),
      col((s) => s.request.agentId),
      col((s) => s.coalesceKey),
      col((s) => s.status),
      col((s) => s.final),
      col((s) => s.primaryRequestId),
      col((s) => s.resourceVersion),
      col((s) => s.fencingToken),
      col((s) => s.detail),
      col((s) => JSON.stringify(s.request)),
      col((s) => s.topic),
    ],
  );
  return new Set(rows.map((r) => r.request_id as string));
}

async function insertRequests(db: PoolClient, requests: RequestRow[]): Promise<void> {
  if (!requests.length) return;
  const col = <T>(f: (r: RequestRow) => T) => requests.map(f);
  const ts = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  await db.query(
    `INSERT INTO arbiter.requests (request_id, agent_id, resource_arn, scope, action, params, expected_version, depends_on, plan_id, step,
                                   deadline, reason, incident_id, requested_at, topic, kafka_partition, kafka_offset, rerouted_from)
     SELECT u.request_id, u.agent_id, u.resource_arn, u.scope, u.action, u.params, u.expected_version,
            ARRAY(SELECT jsonb_array_elements_text(u.depends_on)), u.plan_id, u.step, u.deadline, u.reason, u.incident_id,
            u.requested_at, u.topic, u.kafka_partition, u.kafka_offset, u.rerouted_from
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::bigint[], $8::jsonb[], $9::text[],
                   $10::int[], $11::timestamptz[], $12::text[], $13::text[], $14::timestamptz[], $15::text[], $16::int[], $17::bigint[], $18::int[])
         AS u(request_id, agent_id, resource_arn, scope, action, params, expected_version, depends_on, plan_id, step, deadline, reason,
              incident_id, requested_at, topic, kafka_partition, kafka_offset, rerouted_from)`,
    [
      col((r) => r.request.requestId),
      col((r) => r.request.agentId),
      col((r) => r.request.resourceArn),
      col((r) => r.scope),
      col((r) => r.request.action),
      col((r) => JSON.stringify(r.request.params)),
      col((r) => r.request.expectedVersion),
      col((r) => JSON.stringify(r.request.dependsOn)),
      col((r) => r.request.planId),
      col((r) => r.request.step),
      col((r) => ts(r.request.deadline)),
      col((r) => r.request.reason),
      col((r) => r.request.incidentId),
      col((r) => ts(r.request.requestedAt)),
      col((r) => r.topic),
      col((r) => r.partition),
      col((r) => r.offset),
      col((r) => r.reroutedFrom),
    ],
  );
}

async function insertDeadLetters(db: PoolClient, rows: DeadLetterRow[], workerId: string): Promise<void> {
  if (!rows.length) return;
  const col = <T>(f: (r: DeadLetterRow) => T) => rows.map(f);
  await db.query(
    `INSERT INTO arbiter.dead_letters (topic, kafka_partition, kafka_offset, record_key, record_value, headers, error_code, error, worker_id)
     SELECT *, $9::text FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bytea[], $5::bytea[], $6::jsonb[], $7::text[], $8::text[])
     ON CONFLICT DO NOTHING`,
    [
      col((r) => r.topic),
      col((r) => r.partition),
      col((r) => r.offset),
      col((r) => r.key),
      col((r) => r.value),
      col((r) => JSON.stringify(r.headers)),
      col((r) => r.errorCode),
      col((r) => r.error),
      workerId,
    ],
  );
}
