import pg from 'pg';
import { AuditStore, type DecisionRow, type RequestRow, type RequestStateRow } from '../audit/index.ts';
import { coalesceKey } from '../coalesce/index.ts';
import { createPool, migrate } from '../db/index.ts';
import { cpuBetween, cpuSnapshot, type CpuUsage } from './proc.ts';
import { progressBar } from './progress.ts';
import { stormOrder, stormRequest, type TargetPod } from './storm.ts';

export interface PgCeilingOptions {
  /** A database URL on the same server; it is created, migrated, and dropped afterwards. */
  databaseUrl: string;
  requests: number;
  pods: TargetPod[];
  agents: number;
  seed: number;
  /** Concurrent connections, one per worker process Arbiter runs with. */
  connections: number;
  /** Rows per statement for the bulk decisions insert. */
  bulkChunk: number;
  /** Requests per transaction for the arrival write set, as the worker's intake chunk. */
  arrivalChunk: number;
  keep?: boolean;
}

export interface PgCeilingResult {
  connections: number;
  /** arbiter.decisions rows only, with AuditStore.insertDecisions (unnest), `bulkChunk` rows a statement. */
  decisions: { rows: number; seconds: number; rowsPerSecond: number; chunk: number };
  /**
   * What Arbiter writes for each arriving request, with the worker's own code: AuditStore.recordArrivals
   * (request_state + requests + decisions in one transaction of `arrivalChunk` requests) followed by
   * markPublished (the outbox flag), 1 in ~100 ACCEPTED and the rest COALESCED, as in the storm.
   */
  arrivals: { requests: number; seconds: number; requestsPerSecond: number; chunk: number };
  /** The same without markPublished: what the outbox flag's UPDATE costs. */
  arrivalsWithoutFlag: { requests: number; seconds: number; requestsPerSecond: number; chunk: number };
  cpu: { decisions: CpuUsage; arrivals: CpuUsage; arrivalsWithoutFlag: CpuUsage };
}

/** The storm's rows for requests [from, to): what intake.ts would have decided for them. */
function arrivalRows(options: PgCeilingOptions, order: Uint32Array, duplicates: Uint32Array, primaries: string[], from: number, to: number, now: number) {
  const requests: RequestRow[] = [];
  const states: RequestStateRow[] = [];
  const decisions: DecisionRow[] = [];
  const finalIds: string[] = [];
  for (let j = from; j < to; j++) {
    const p = order[j]!;
    const pod = options.pods[p]!;
    const request = stormRequest(pod, duplicates[p]!++, options.agents, now);
    const primary = primaries[p];
    const key = coalesceKey(request.resourceArn, request.action, request.params);
    const status = primary ? 'COALESCED' : 'ACCEPTED';
    const detail = primary ? `coalesced into ${primary}, which ended EXECUTED: restarted; restarts=1` : null;
    if (!primary) primaries[p] = request.requestId;
    else finalIds.push(request.requestId);
    requests.push({ request, scope: pod.scope, topic: 'bench.requests', partition: pod.partition, offset: String(j), reroutedFrom: null });
    states.push({
      request,
      scope: pod.scope,
      topic: 'bench.requests',
      partition: pod.partition,
      coalesceKey: key,
      status,
      final: primary !== undefined,
      primaryRequestId: primary ?? null,
      resourceVersion: primary ? 2 : null,
      fencingToken: primary ? 1 : null,
      detail,
    });
    decisions.push({
      requestId: request.requestId,
      agentId: request.agentId,
      resourceArn: request.resourceArn,
      scope: pod.scope,
      action: request.action,
      status,
      final: primary !== undefined,
      primaryRequestId: primary ?? null,
      resourceVersion: primary ? 2 : null,
      fencingToken: primary ? 1 : null,
      detail,
      latencyMs: 5,
    });
  }
  return { requests, states, decisions, finalIds };
}

async function lanes(count: number, total: number, chunk: number, label: string, work: (from: number, to: number) => Promise<void>): Promise<number> {
  const bar = progressBar(label, total);
  let next = 0;
  let done = 0;
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: count }, async () => {
        while (next < total) {
          const from = next;
          const to = Math.min(total, from + chunk);
          next = to;
          await work(from, to);
          done += to - from;
          bar.update(done);
        }
      }),
    );
  } finally {
    bar.stop();
  }
  return (performance.now() - started) / 1000;
}

/**
 * Postgres' own ceiling for the storm's rows, on the same server, in a fresh database migrated like
 * Arbiter's (same tables, partitions and indexes), written with Arbiter's own AuditStore statements.
 */
export async function runPgCeiling(options: PgCeilingOptions): Promise<PgCeilingResult> {
  await migrate(options.databaseUrl);
  const pool = createPool(options.databaseUrl, options.connections);
  const audit = new AuditStore(pool, 'bench-pg-ceiling');
  const groups = [{ name: 'bench process', pids: [process.pid] }];
  try {
    const now = Date.now();
    const order = stormOrder(options.requests, options.pods.length, options.seed);

    // 1. Bulk insert of the decision rows alone.
    let duplicates = new Uint32Array(options.pods.length);
    let primaries: string[] = [];
    const c0 = cpuSnapshot(groups);
    const decisionSeconds = await lanes(options.connections, options.requests, options.bulkChunk, 'pg decisions', async (from, to) => {
      const { decisions } = arrivalRows(options, order, duplicates, primaries, from, to, now);
      await audit.insertDecisions(pool, decisions);
    });
    const c1 = cpuSnapshot(groups);

    // 2. The arrival write set, as intake.ts makes it durable, with and without the outbox flag update.
    const arrivals = async (label: string, withFlag: boolean) => {
      await pool.query('TRUNCATE arbiter.decisions, arbiter.requests, arbiter.request_state');
      duplicates = new Uint32Array(options.pods.length);
      primaries = [];
      const before = cpuSnapshot(groups);
      const seconds = await lanes(options.connections, options.requests, options.arrivalChunk, label, async (from, to) => {
        const rows = arrivalRows(options, order, duplicates, primaries, from, to, now);
        await audit.recordArrivals({ ...rows, deadLetters: [] });
        if (withFlag) await audit.markPublished(rows.finalIds);
      });
      return { seconds, cpu: cpuBetween(before, cpuSnapshot(groups)) };
    };
    const flagged = await arrivals('pg arrivals', true);
    const unflagged = await arrivals('pg arr. no flag', false);
    const rate = (seconds: number) => ({ requests: options.requests, seconds, requestsPerSecond: options.requests / seconds, chunk: options.arrivalChunk });
    return {
      connections: options.connections,
      decisions: { rows: options.requests, seconds: decisionSeconds, rowsPerSecond: options.requests / decisionSeconds, chunk: options.bulkChunk },
      arrivals: rate(flagged.seconds),
      arrivalsWithoutFlag: rate(unflagged.seconds),
      cpu: { decisions: cpuBetween(c0, c1), arrivals: flagged.cpu, arrivalsWithoutFlag: unflagged.cpu },
    };
  } finally {
    await pool.end();
    if (!options.keep) await dropDatabase(options.databaseUrl);
  }
}

export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
