import type { Pool, PoolClient } from '../db/index.ts';
import { inTransaction } from '../db/index.ts';
import { isFinal, type FinalDecision } from '../contract/decision.ts';
import type { RemediationRequest } from '../contract/request.ts';
import type { DependencyState } from '../decide/index.ts';
import type { ArrivalRow, DeadLetterRow, DecidedRequest, ExecutionRow, ResourceChange, StoredRequest } from './rows.ts';
import { storableRequest, storableText } from './storable.ts';

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

  /**
   * The requests among these ids that were decided already (redelivery, or an id reused), with the
   * partition that owns each and the request as stored, to tell a redelivery from a reused id.
   */
  async knownRequests(ids: string[]): Promise<Map<string, { topic: string; partition: number; request: RemediationRequest }>> {
    if (!ids.length) return new Map();
    const { rows } = await this.pool.query(
      'SELECT request_id, topic, kafka_partition, request FROM arbiter.request_state WHERE request_id = ANY($1::uuid[])',
      [ids],
    );
    return new Map(rows.map((r) => [r.request_id as string, { topic: r.topic as string, partition: r.kafka_partition as number, request: r.request as RemediationRequest }]));
  }

  /**
   * Makes one chunk's arrival decisions durable in one transaction. Request states are inserted
   * first with ON CONFLICT DO NOTHING; requests and decisions are only written for those that were
   * new, so a redelivered record never produces a second decision. A re-routed record carries no
   * state here (its scope's partition decides it), only its REROUTED decision.
   */
  async recordArrivals(batch: { arrivals: ArrivalRow[]; deadLetters: DeadLetterRow[] }): Promise<Set<string>> {
    return inTransaction(this.pool, async (db) => {
      const owned = batch.arrivals.filter((a) => a.decision.status !== 'REROUTED');
      const fresh = await insertStates(db, owned);
      await insertRequests(db, owned.filter((a) => fresh.has(a.request.requestId)));
      await this.insertDecisions(
        db,
        batch.arrivals.filter((a) => a.decision.status === 'REROUTED' || fresh.has(a.request.requestId)),
      );
      await insertDeadLetters(db, batch.deadLetters, this.workerId);
      return fresh;
    });
  }

  /**
   * Whether PostgreSQL would accept these arrivals: writes them in a transaction that is rolled
   * back. Used only to isolate the record a failed chunk stumbled on.
   */
  async probeArrivals(arrivals: ArrivalRow[]): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const owned = arrivals.filter((a) => a.decision.status !== 'REROUTED');
      await insertStates(client, owned);
      await insertRequests(client, owned);
      await this.insertDecisions(client, arrivals);
      return true;
    } catch {
      return false;
    } finally {
      await client.query('ROLLBACK').catch(() => {});
      client.release();
    }
  }

  async insertDecisions(db: Queryable, decided: readonly DecidedRequest[]): Promise<void> {
    if (!decided.length) return;
    const col = <T>(f: (d: DecidedRequest) => T) => decided.map(f);
    await db.query(
      `INSERT INTO arbiter.decisions (request_id, agent_id, resource_arn, scope, action, status, final, primary_request_id,
                                      resource_version, fencing_token, detail, latency_ms, rule, worker_id)
       SELECT *, $14::text FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[],
                                  $8::uuid[], $9::bigint[], $10::bigint[], $11::text[], $12::float8[], $13::text[])`,
      [
        col((d) => d.request.requestId),
        col((d) => storableText(d.request.agentId, 1_024)),
        col((d) => storableText(d.request.resourceArn, 4_096)),
        col((d) => storableText(d.scope, 4_096)),
        col((d) => storableText(d.request.action, 256)),
        col((d) => d.decision.status),
        col((d) => isFinal(d.decision)),
        col((d) => d.decision.primaryRequestId ?? null),
        col((d) => d.decision.resourceVersion ?? null),
        col((d) => d.decision.fencingToken ?? null),
        col((d) => storableText(d.decision.detail)),
        col((d) => d.latencyMs ?? null),
        col((d) => d.decision.rule),
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

  /**
   * A progress decision (DEFERRED) on a queued request, recorded only while the request is still
   * open: a stalled former owner never adds progress after another owner's final decision.
   * Returns whether it recorded.
   */
  async recordProgress(decided: DecidedRequest): Promise<boolean> {
    return inTransaction(this.pool, async (db) => {
      const { rowCount } = await db.query('UPDATE arbiter.request_state SET status = $2, rule = $3, detail = $4 WHERE request_id = $1 AND NOT final', [
        decided.request.requestId,
        decided.decision.status,
        decided.decision.rule,
        storableText(decided.decision.detail),
      ]);
      if (!rowCount) return false;
      await this.insertDecisions(db, [decided]);
      return true;
    });
  }

  /**
   * The final decision of a primary, its finished execution phase and the resource's new version,
   * in one transaction. The request_state row is updated only if it is not final yet, so a zombie
   * owner racing the new one can never record a second final decision. Returns whether it recorded.
   */
  async finalize(input: { decided: DecidedRequest & { decision: FinalDecision }; execution?: ExecutionRow; resource?: ResourceChange }): Promise<boolean> {
    const { request, decision } = input.decided;
    return inTransaction(this.pool, async (db) => {
      const { rowCount } = await db.query(
        `UPDATE arbiter.request_state
            SET status = $2, rule = $3, final = true, primary_request_id = $4, resource_version = $5, fencing_token = $6,
                detail = $7, finished_at = now()
          WHERE request_id = $1 AND NOT final`,
        [
          request.requestId,
          decision.status,
          decision.rule,
          decision.primaryRequestId ?? null,
          decision.resourceVersion ?? null,
          decision.fencingToken ?? null,
          storableText(decision.detail),
        ],
      );
      if (!rowCount) return false;
      await this.insertDecisions(db, [input.decided]);
      if (input.execution) await this.recordExecution(input.execution, db);
      if (input.resource) {
        const r = input.resource;
        await db.query(
          `INSERT INTO arbiter.resource_state (resource_arn, scope, version, expected_state, last_request_id, last_action, last_agent_id, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, now())
           ON CONFLICT (resource_arn) DO UPDATE
             SET version = EXCLUDED.version, expected_state = EXCLUDED.expected_state, last_request_id = EXCLUDED.last_request_id,
                 last_action = EXCLUDED.last_action, last_agent_id = EXCLUDED.last_agent_id, updated_at = now()
           -- A late writer never moves the version backwards.
           WHERE arbiter.resource_state.version <= EXCLUDED.version`,
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
  async loadOpen(topic: string, partitions: number[]): Promise<StoredRequest[]> {
    const { rows } = await this.pool.query(
      `${SELECT_STATE}
        WHERE s.topic = $2 AND s.kafka_partition = ANY($1::int[]) AND (NOT s.final OR NOT s.outcome_published)
        ORDER BY s.received_at`,
      [partitions, topic],
    );
    return rows.map(toStoredRequest);
  }

  /**
   * Final requests of one partition whose outcome is still unpublished after `olderThanMs` (a
   * publish that failed, or was dropped from a full backlog) — except followers whose primary is
   * still open: they are answered when it ends.
   */
  async loadUnpublished(topic: string, partition: number, olderThanMs: number, limit: number): Promise<StoredRequest[]> {
    const { rows } = await this.pool.query(
      `${SELECT_STATE}
        WHERE s.topic = $1 AND s.kafka_partition = $2 AND s.final AND NOT s.outcome_published
          AND s.finished_at < now() - make_interval(secs => $3::double precision / 1000)
          AND NOT EXISTS (SELECT 1 FROM arbiter.request_state p WHERE p.request_id = s.primary_request_id AND NOT p.final)
        ORDER BY s.finished_at
        LIMIT $4`,
      [topic, partition, olderThanMs, limit],
    );
    return rows.map(toStoredRequest);
  }

  /** The state of these requests of one partition, whatever it is (for records another owner decided). */
  async loadByIds(ids: string[], topic: string, partition: number): Promise<StoredRequest[]> {
    if (!ids.length) return [];
    const { rows } = await this.pool.query(
      `${SELECT_STATE} WHERE s.request_id = ANY($1::uuid[]) AND s.topic = $2 AND s.kafka_partition = $3 ORDER BY s.received_at`,
      [ids, topic, partition],
    );
    return rows.map(toStoredRequest);
  }

  /**
   * Executed requests of these partitions finished within the last `windowMs` by the database's
   * clock: coalescing windows and conflict history.
   */
  async loadRecentlyExecuted(topic: string, partitions: number[], windowMs: number): Promise<StoredRequest[]> {
    const { rows } = await this.pool.query(
      `SELECT s.*, ${AGES}, false AS execution_started
         FROM arbiter.request_state s
        WHERE s.topic = $3 AND s.kafka_partition = ANY($1::int[]) AND s.final AND s.status = 'EXECUTED'
          AND s.finished_at >= now() - make_interval(secs => $2::double precision / 1000)
        ORDER BY s.finished_at`,
      [partitions, windowMs, topic],
    );
    return rows.map(toStoredRequest);
  }

  /**
   * Under the lock, just before executing: whether the request is final already (another owner
   * finished it while this one still thought it owned the partition) and whether an execution of
   * it ever started (by anyone), in which case the resource must be observed before acting.
   */
  async executionState(requestId: string): Promise<{ final: FinalDecision | null; started: boolean }> {
    const { rows } = await this.pool.query(
      `${SELECT_STATE_COLUMNS}, EXISTS (SELECT 1 FROM arbiter.executions e WHERE e.request_id = s.request_id) AS ever_started
         FROM arbiter.request_state s WHERE s.request_id = $1`,
      [requestId],
    );
    const row = rows[0];
    return { final: row ? storedDecision(row) : null, started: Boolean(row?.ever_started) };
  }

  /** The state of each dependency that is known (a coalesced one reports its primary's status). */
  async dependencyStatus(ids: string[]): Promise<Map<string, DependencyState>> {
    const { rows } = await this.pool.query(
      `SELECT s.request_id, s.final, s.status, p.status AS primary_status
         FROM arbiter.request_state s LEFT JOIN arbiter.request_state p ON p.request_id = s.primary_request_id
        WHERE s.request_id = ANY($1::uuid[])`,
      [ids],
    );
    return new Map(
      rows.map((r) => [r.request_id, { final: r.final, effectiveStatus: r.status === 'COALESCED' ? (r.primary_status ?? r.status) : r.status }]),
    );
  }

  /** The final decisions of finished requests, for republishing what coalesced into them. */
  async finalDecisions(ids: string[]): Promise<Map<string, FinalDecision>> {
    if (!ids.length) return new Map();
    const { rows } = await this.pool.query(`${SELECT_STATE} WHERE s.final AND s.request_id = ANY($1::uuid[])`, [ids]);
    return new Map(rows.map((r) => [r.request_id as string, storedDecision(r)!]));
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

/**
 * Times are read as ages by the database's clock and turned into this worker's time on arrival
 * (toStoredRequest), so windows rebuilt from the database do not shift with a skew between the
 * worker's clock and the database's.
 */
const AGES = `EXTRACT(EPOCH FROM now() - s.received_at) * 1000 AS received_ago_ms, EXTRACT(EPOCH FROM now() - s.finished_at) * 1000 AS finished_ago_ms`;

const SELECT_STATE_COLUMNS = `SELECT s.*, ${AGES}`;

const SELECT_STATE = `
  SELECT s.*, ${AGES},
         EXISTS (SELECT 1 FROM arbiter.executions e WHERE e.request_id = s.request_id AND e.phase = 'started')
     AND NOT EXISTS (SELECT 1 FROM arbiter.executions e WHERE e.request_id = s.request_id AND e.phase <> 'started') AS execution_started
    FROM arbiter.request_state s`;

function toStoredRequest(r: Record<string, unknown>): StoredRequest {
  return {
    request: r.request as RemediationRequest,
    scope: r.scope as string,
    partition: r.kafka_partition as number,
    coalesceKey: r.coalesce_key as string,
    decision: storedDecision(r),
    status: r.status as string,
    receivedAt: Date.now() - Number(r.received_ago_ms),
    finishedAt: r.finished_ago_ms === null ? null : Date.now() - Number(r.finished_ago_ms),
    outcomePublished: Boolean(r.outcome_published),
    executionStarted: Boolean(r.execution_started),
  };
}

/** The final decision a request_state row holds, or null while the request is open. */
function storedDecision(r: Record<string, unknown>): FinalDecision | null {
  if (!r.final) return null;
  return {
    status: r.status,
    // Rows written before the rule was recorded (migration 0003) name none.
    rule: r.rule ?? 'execute',
    detail: (r.detail as string | null) ?? '',
    primaryRequestId: (r.primary_request_id as string | null) ?? null,
    resourceVersion: r.resource_version === null ? null : Number(r.resource_version),
    fencingToken: r.fencing_token === null ? null : Number(r.fencing_token),
  } as FinalDecision;
}

async function insertStates(db: PoolClient, given: ArrivalRow[]): Promise<Set<string>> {
  if (!given.length) return new Set();
  const arrivals = given.map((a) => ({ ...a, request: storableRequest(a.request), scope: storableText(a.scope, 4_096) }));
  const col = <T>(f: (a: ArrivalRow) => T) => arrivals.map(f);
  const { rows } = await db.query(
    `INSERT INTO arbiter.request_state (request_id, scope, topic, kafka_partition, resource_arn, action, agent_id, coalesce_key, status, rule,
                                        final, primary_request_id, resource_version, fencing_token, detail, request, finished_at)
     SELECT u.*, CASE WHEN u.final THEN now() END
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                   $11::boolean[], $12::uuid[], $13::bigint[], $14::bigint[], $15::text[], $16::jsonb[])
         AS u(request_id, scope, topic, kafka_partition, resource_arn, action, agent_id, coalesce_key, status, rule, final,
              primary_request_id, resource_version, fencing_token, detail, request)
     ON CONFLICT (request_id) DO NOTHING
     RETURNING request_id`,
    [
      col((a) => a.request.requestId),
      col((a) => a.scope),
      col((a) => a.topic),
      col((a) => a.partition),
      col((a) => a.request.resourceArn),
      col((a) => a.request.action),
      col((a) => a.request.agentId),
      col((a) => a.coalesceKey),
      col((a) => a.decision.status),
      col((a) => a.decision.rule),
      col((a) => isFinal(a.decision)),
      col((a) => a.decision.primaryRequestId ?? null),
      col((a) => a.decision.resourceVersion ?? null),
      col((a) => a.decision.fencingToken ?? null),
      col((a) => storableText(a.decision.detail)),
      col((a) => JSON.stringify(a.request)),
    ],
  );
  return new Set(rows.map((r) => r.request_id as string));
}

async function insertRequests(db: PoolClient, given: ArrivalRow[]): Promise<void> {
  if (!given.length) return;
  const requests = given.map((a) => ({ ...a, request: storableRequest(a.request), scope: storableText(a.scope, 4_096) }));
  const col = <T>(f: (r: ArrivalRow) => T) => requests.map(f);
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
      col((r) => storableText(r.error)),
      workerId,
    ],
  );
}
