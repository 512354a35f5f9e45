import type { Pool, PoolClient } from '../db/index.ts';
import { isFinal, type FinalDecision } from '../contract/decision.ts';
import type { RemediationRequest } from '../contract/request.ts';
import type { DependencyState } from '../decide/index.ts';
import { inFlightFollower } from '../contract/decision.ts';
import { ArrivalGroup } from './arrival-group.ts';
import { BatchWriter } from '../db/index.ts';
import { finalizeMany, type Finalization } from './finalize-many.ts';
import { requestOfDuplicate, writeArrivals, type ArrivalWrite } from './arrivals.ts';
import type { ArrivalRow, DeadLetterRow, DecidedRequest, ExecutionRow, StoredRequest } from './rows.ts';
import type { SecretParams } from './secret-params.ts';
import { storableText } from './storable.ts';
import { storedDecision } from './stored.ts';

type Queryable = Pool | PoolClient;

/**
 * Every write Arbiter makes to its audit trail and working state. Writes are batched with unnest()
 * so one Kafka batch costs a handful of round trips, whatever its size.
 */
export class AuditStore {
  constructor(
    readonly pool: Pool,
    private readonly workerId: string,
    /** Params the policy marks secret, per action: kept redacted in the audit rows. */
    private readonly secretParams: SecretParams = {},
    /**
     * Connections of their own for arrival writes, so that a record's first decision never waits
     * for a connection behind the executions' transactions (the pool otherwise).
     */
    private readonly arrivalPool: Pool = pool,
  ) {}

  /**
   * Makes one chunk's arrival decisions durable in one statement (see writeArrivals): unless an id
   * of the chunk was decided before, in which case nothing is written and the known ids come back.
   */
  recordArrivals(batch: { arrivals: readonly ArrivalRow[]; deadLetters: readonly DeadLetterRow[] }): Promise<ArrivalWrite> {
    return this.arrivals.add(batch);
  }

  /** Concurrent chunks (one per partition being consumed) share statements: see ArrivalGroup. */
  private readonly arrivals = new ArrivalGroup((batch) => writeArrivals(this.arrivalPool, this.workerId, batch, this.secretParams));

  /**
   * Whether PostgreSQL would accept these arrivals: writes them in a transaction that is rolled
   * back. Used only to isolate the record a failed chunk stumbled on.
   */
  async probeArrivals(arrivals: ArrivalRow[]): Promise<boolean> {
    const client = await this.arrivalPool.connect();
    try {
      await client.query('BEGIN');
      await writeArrivals(client, this.workerId, { arrivals, deadLetters: [] }, this.secretParams, 'checked');
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
      `INSERT INTO arbiter.decision_log (request_id, agent_id, resource_arn, scope, action, status, final, primary_request_id,
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

  async recordExecution(row: ExecutionRow): Promise<void> {
    await this.pool.query(
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
    const { request, decision } = decided;
    const p = new Params();
    const state = `UPDATE arbiter.request_state SET status = ${p.add(decision.status)}, rule = ${p.add(decision.rule)}, detail = ${p.add(storableText(decision.detail))}
                    WHERE request_id = ${p.add(request.requestId)} AND NOT final RETURNING request_id`;
    const { rows } = await this.pool.query(
      `WITH s AS (${state}), d AS (${this.decisionFromState(p, decided)}) SELECT count(*)::int AS n FROM s`,
      p.values,
    );
    return rows[0].n > 0;
  }

  /**
   * The final decision of a primary, its finished execution phase and the resource's new version,
   * atomically; group-committed with other primaries ending at the same time (finalize-many.ts).
   * The request_state row is updated only if it is not final yet, and every other row is written
   * only through that update, so a zombie owner racing the new one can never record a second final
   * decision. Returns whether it recorded.
   */
  finalize(input: Finalization): Promise<boolean> {
    return this.finalizations.add(input);
  }

  private readonly finalizations = new BatchWriter<Finalization, boolean>(
    (items) => finalizeMany(this.pool, this.workerId, items),
    200,
    2,
    // A statement cannot upsert one resource_state row twice.
    (item) => item.decided.request.resourceArn,
  );

  /** The decision_log row of a decision, written only for the request_state row `s` the statement updated. */
  private decisionFromState(p: Params, decided: DecidedRequest): string {
    const { request, decision } = decided;
    return `INSERT INTO arbiter.decision_log (request_id, agent_id, resource_arn, scope, action, status, final, primary_request_id,
                                              resource_version, fencing_token, detail, latency_ms, rule, worker_id)
            SELECT request_id, ${p.list(storableText(request.agentId, 1_024), storableText(request.resourceArn, 4_096), storableText(decided.scope, 4_096), storableText(request.action, 256), decision.status)},
                   ${p.add(isFinal(decision))}::boolean, ${p.add(decision.primaryRequestId ?? null)}::uuid, ${p.add(decision.resourceVersion ?? null)}::bigint,
                   ${p.add(decision.fencingToken ?? null)}::bigint, ${p.add(storableText(decision.detail))}, ${p.add(decided.latencyMs ?? null)}::float8,
                   ${p.list(decision.rule, this.workerId)}
              FROM s`;
  }

  /**
   * Takes these answers out of the outbox: they are on Kafka. A delete touches no index (setting a
   * flag on request_state rewrote the row and its four indexes: migrations/0015).
   */
  async markPublished(requestIds: string[]): Promise<void> {
    if (!requestIds.length) return;
    await this.pool.query('DELETE FROM arbiter.outcome_outbox WHERE request_id = ANY($1::uuid[])', [requestIds]);
  }

  /** Requests of these partitions that are not final, or whose outcome was never published. */
  async loadOpen(topic: string, partitions: number[]): Promise<StoredRequest[]> {
    const { rows } = await this.pool.query(
      // Two parts, so that each is read through its own index: open requests (request_state_open)
      // and answers in the outbox (a small table).
      `SELECT * FROM (
         ${SELECT_STATE} WHERE s.topic = $2 AND s.kafka_partition = ANY($1::int[]) AND NOT s.final
         UNION ALL
         ${SELECT_STATE} JOIN arbiter.outcome_outbox box ON box.request_id = s.request_id
          WHERE box.topic = $2 AND box.kafka_partition = ANY($1::int[]) AND s.final
       ) open ORDER BY received_at`,
      [partitions, topic],
    );
    return this.withInFlightDuplicates(rows.map(toStoredRequest));
  }

  /**
   * Final requests of one partition whose outcome is still unpublished after `olderThanMs` (a
   * publish that failed, or was dropped from a full backlog), with the duplicates that were told to
   * wait for them — except followers whose primary is still open: they are answered when it ends.
   */
  async loadUnpublished(topic: string, partition: number, olderThanMs: number, limit: number): Promise<StoredRequest[]> {
    const { rows } = await this.pool.query(
      `${SELECT_STATE} JOIN arbiter.outcome_outbox box ON box.request_id = s.request_id
        WHERE box.topic = $1 AND box.kafka_partition = $2 AND s.final
          AND box.finished_at < now() - make_interval(secs => $3::double precision / 1000)
          AND NOT EXISTS (SELECT 1 FROM arbiter.request_state p WHERE p.request_id = s.primary_request_id AND NOT p.final)
        ORDER BY box.finished_at
        LIMIT $4`,
      [topic, partition, olderThanMs, limit],
    );
    return this.withInFlightDuplicates(rows.map(toStoredRequest));
  }

  /** The state of these requests of one partition, whatever it is (for records another owner decided). */
  async loadByIds(ids: string[], topic: string, partition: number): Promise<StoredRequest[]> {
    if (!ids.length) return [];
    const [state, duplicates] = await Promise.all([
      this.pool.query(`${SELECT_STATE} WHERE s.request_id = ANY($1::uuid[]) AND s.topic = $2 AND s.kafka_partition = $3 ORDER BY s.received_at`, [
        ids,
        topic,
        partition,
      ]),
      this.pool.query(`${SELECT_DUPLICATE} WHERE d.request_id = ANY($1::uuid[]) AND d.topic = $2 AND d.kafka_partition = $3 ORDER BY d.received_at`, [
        ids,
        topic,
        partition,
      ]),
    ]);
    return [...state.rows.map(toStoredRequest), ...duplicates.rows.map(toStoredDuplicate)];
  }

  /**
   * The duplicates that waited in flight for this primary and were accepted up to `throughOffset` of
   * its partition (all of them when null): the followers a spilled primary answers when it ends.
   */
  async inFlightFollowers(primaryRequestId: string, partition: number, throughOffset: string | null): Promise<Array<{ request: Pick<RemediationRequest, 'requestId' | 'agentId' | 'resourceArn' | 'action' | 'requestedAt'>; scope: string }>> {
    const { rows } = await this.pool.query(
      `SELECT request_id, agent_id, resource_arn, action, scope, EXTRACT(EPOCH FROM requested_at) * 1000 AS requested_at_ms
         FROM arbiter.duplicates
        WHERE primary_request_id = $1 AND in_flight AND kafka_partition = $2 AND ($3::bigint IS NULL OR kafka_offset <= $3::bigint)`,
      [primaryRequestId, partition, throughOffset],
    );
    return rows.map((r) => ({
      request: { requestId: r.request_id, agentId: r.agent_id, resourceArn: r.resource_arn, action: r.action, requestedAt: Math.round(Number(r.requested_at_ms)) },
      scope: r.scope,
    }));
  }

  /**
   * Adds the duplicates that merged into these primaries while they were pending: their answer is
   * the primary's, due when it ends (or again, if the primary's was never published).
   */
  private async withInFlightDuplicates(rows: StoredRequest[]): Promise<StoredRequest[]> {
    const primaries = rows.filter((r) => r.status !== 'COALESCED').map((r) => r.request.requestId);
    if (!primaries.length) return rows;
    const { rows: duplicates } = await this.pool.query(
      `${SELECT_DUPLICATE} WHERE d.in_flight AND d.primary_request_id = ANY($1::uuid[]) ORDER BY d.received_at`,
      [primaries],
    );
    return [...rows, ...duplicates.map(toStoredDuplicate)];
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
   * Under the lock, before the action runs: records its 'started' phase unless the request is final
   * or an execution of it ever started (then the caller looks at the resource first, and records
   * through recordExecution). One round trip, shared by the executions starting at the same time;
   * `recorded` says whether it wrote.
   */
  beginExecution(row: ExecutionRow): Promise<ExecutionStart> {
    return this.starts.add(row);
  }

  private readonly starts = new BatchWriter<ExecutionRow, ExecutionStart>((rows) => this.beginMany(rows), 200, 2, (row) => row.requestId);

  private async beginMany(rows: ExecutionRow[]): Promise<ExecutionStart[]> {
    const { rows: states } = await this.pool.query({
      name: 'arbiter_begin_many',
      // The columns storedDecision reads, named: a prepared statement must not depend on s.*.
      text: `WITH input AS (
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
                 AS t(request_id, resource_arn, scope, action, agent_id, token)),
             s AS (
               SELECT rs.request_id, rs.status, rs.rule, rs.final, rs.detail, rs.primary_request_id, rs.resource_version, rs.fencing_token,
                      EXISTS (SELECT 1 FROM arbiter.executions e WHERE e.request_id = rs.request_id) AS ever_started
                 FROM arbiter.request_state rs JOIN input i USING (request_id)),
             started AS (
               INSERT INTO arbiter.executions (request_id, resource_arn, scope, action, agent_id, phase, fencing_token, resource_version, detail, worker_id)
               SELECT i.request_id, i.resource_arn, i.scope, i.action, i.agent_id, 'started', i.token, NULL, NULL, $7::text
                 FROM input i JOIN s USING (request_id) WHERE NOT s.final AND NOT s.ever_started
               RETURNING request_id)
             SELECT s.*, s.request_id IN (SELECT request_id FROM started) AS recorded FROM s`,
      values: [
        rows.map((r) => r.requestId),
        rows.map((r) => r.resourceArn),
        rows.map((r) => r.scope),
        rows.map((r) => r.action),
        rows.map((r) => r.agentId),
        rows.map((r) => r.fencingToken),
        this.workerId,
      ],
    });
    const byId = new Map(states.map((state: Record<string, unknown>) => [state.request_id as string, state]));
    return rows.map((r) => {
      const state = byId.get(r.requestId);
      return { final: state ? storedDecision(state) : null, started: Boolean(state?.ever_started), recorded: Boolean(state?.recorded) };
    });
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
         FROM arbiter.request_status s LEFT JOIN arbiter.request_state p ON p.request_id = s.primary_request_id
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

/** A request's working state, whether its answer is out (final, and not in the outbox), and whether an execution of it is open. */
const SELECT_STATE = `
  SELECT s.*, ${AGES},
         s.final AND NOT EXISTS (SELECT 1 FROM arbiter.outcome_outbox o WHERE o.request_id = s.request_id) AS outcome_published,
         EXISTS (SELECT 1 FROM arbiter.executions e WHERE e.request_id = s.request_id AND e.phase = 'started')
     AND NOT EXISTS (SELECT 1 FROM arbiter.executions e WHERE e.request_id = s.request_id AND e.phase <> 'started') AS execution_started
    FROM arbiter.request_state s`;

const SELECT_DUPLICATE = `
  SELECT to_jsonb(d) AS narrow, d.scope, d.kafka_partition, d.in_flight, d.primary_request_id,
         EXTRACT(EPOCH FROM now() - d.received_at) * 1000 AS received_ago_ms, coalesce(p.final AND NOT EXISTS (SELECT 1 FROM arbiter.outcome_outbox o WHERE o.request_id = p.request_id), false) AS primary_published
    FROM arbiter.duplicates d LEFT JOIN arbiter.request_state p ON p.request_id = d.primary_request_id`;

/** A duplicate as working state: a follower whose answer is its primary's. */
function toStoredDuplicate(r: Record<string, unknown>): StoredRequest {
  const receivedAt = Date.now() - Number(r.received_ago_ms);
  return {
    request: requestOfDuplicate(r.narrow as Record<string, unknown>),
    scope: r.scope as string,
    partition: r.kafka_partition as number,
    coalesceKey: '',
    decision: inFlightFollower(r.primary_request_id as string),
    status: 'COALESCED',
    receivedAt,
    finishedAt: receivedAt,
    // Answered on arrival unless it waited for its primary, whose flag then covers it.
    outcomePublished: !r.in_flight || Boolean(r.primary_published),
    executionStarted: false,
  };
}

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

/** What beginExecution found and did. */
export interface ExecutionStart {
  final: FinalDecision | null;
  started: boolean;
  recorded: boolean;
}

/** Numbered parameters for a statement assembled from parts: add() a value, get its `$n`. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
  list(...values: unknown[]): string {
    return values.map((v) => this.add(v)).join(', ');
  }
}
