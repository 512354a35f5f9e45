import { AuditStore, type ArrivalRow } from '../../src/audit/index.ts';
import type * as AuditModule from '../../src/audit/index.ts';
import type { CoalesceMatch } from '../../src/coalesce/index.ts';
import { arrivalRules, loadConfig } from '../../src/config/index.ts';
import { createPool, migrate } from '../../src/db/index.ts';
import type * as DbModule from '../../src/db/index.ts';
import { decideArrival, type ArrivalRules } from '../../src/decide/index.ts';
import type { FinalDecision } from '../../src/index.ts';
import { dropDatabase } from '../support/index.ts';
import { checkpoint } from './pg-checkpoint.ts';
import { cpuBetween, cpuSnapshot, type CpuUsage } from './proc.ts';
import { lanes } from './lanes.ts';
import { stormOrder, stormRequest, type TargetPod } from './storm.ts';

export interface PgCeilingOptions {
  /** A database URL on the same server; it is created, migrated, and dropped afterwards. */
  databaseUrl: string;
  requests: number;
  pods: TargetPod[];
  /** Partitions of the requests topic the pods were assigned with. */
  partitions: number;
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
   * (one statement per chunk of `arrivalChunk` requests), 1 in ~100 ACCEPTED and the rest COALESCED,
   * as in the storm. An answer decided on arrival never enters the outbox, so nothing follows it.
   * (Results saved before the ninth pass also hold `arrivalsWithoutFlag`: the same without an outbox
   * UPDATE that by then matched no row.)
   */
  arrivals: { requests: number; seconds: number; requestsPerSecond: number; chunk: number };
  cpu: { decisions: CpuUsage; arrivals: CpuUsage };
}

/** The primary of a pod the storm has already restarted: every later request for it coalesces. */
function restarted(): FinalDecision {
  return { status: 'EXECUTED', rule: 'execute', resourceVersion: 2, fencingToken: 1, detail: 'restarted; restarts=1' };
}

/**
 * The storm's arrivals for requests [from, to), decided by the worker's own arrival rules
 * (decideArrival): a pod's first request is accepted, the rest coalesce into it as if it had
 * executed, about 1 in 100 accepted, as in the storm.
 */
export function arrivalRows(options: Pick<PgCeilingOptions, 'pods' | 'partitions' | 'agents'>, rules: ArrivalRules, order: Uint32Array, duplicates: Uint32Array, primaries: string[], from: number, to: number, now: number) {
  const arrivals: ArrivalRow[] = [];
  for (let j = from; j < to; j++) {
    const p = order[j]!;
    const pod = options.pods[p]!;
    const request = stormRequest(pod, duplicates[p]!++, options.agents, now);
    const primary = primaries[p];
    const view = {
      partition: pod.partition,
      partitions: options.partitions,
      coalesceMatch: (): CoalesceMatch | undefined => (primary ? { kind: 'finished', primaryRequestId: primary, outcome: restarted() } : undefined),
    };
    const { scope, coalesceKey, decision } = decideArrival(request, pod.scope, view, rules, now);
    if (decision.status === 'ACCEPTED') primaries[p] = request.requestId;
    arrivals.push({ request, scope, decision, latencyMs: 5, topic: 'bench.requests', partition: pod.partition, offset: String(j), reroutedFrom: null, coalesceKey });
  }
  return { arrivals };
}

/**
 * The arrival write set of one chunk, as the worker's intake makes it durable. The only place the
 * ceiling calls AuditStore's arrival API: when the arrival path changes, this is what follows it.
 */
export async function writeArrivalSet(audit: AuditStore, rows: { arrivals: ArrivalRow[] }): Promise<void> {
  await audit.recordArrivals({ arrivals: rows.arrivals, deadLetters: [] });
}

/** The modules a measured pass writes with: this checkout's, or another build's (pg-executions.ts loadBuild). */
export interface PassModules {
  db: Pick<typeof DbModule, 'migrate' | 'createPool'>;
  audit: Pick<typeof AuditModule, 'AuditStore'>;
}

export const THIS_CHECKOUT: PassModules = { db: { migrate, createPool }, audit: { AuditStore } };

/** What every pass over one storm shares, made once: the arrival rules that decide its rows, its order, its clock. */
export interface StormRows {
  rules: ArrivalRules;
  order: Uint32Array;
  now: number;
}

export function stormRows(options: Pick<PgCeilingOptions, 'requests' | 'pods' | 'seed'>): StormRows {
  // The default configuration's arrival rules: scope rules, policy (allow), limits, windows.
  return { rules: arrivalRules(loadConfig({ env: {} })), order: stormOrder(options.requests, options.pods.length, options.seed), now: Date.now() };
}

export interface PassSpec {
  label: string;
  /** Requests per statement. */
  chunk: number;
  /** CHECKPOINT first, so that the checkpointer does not write the previous pass's pages during this one. */
  checkpointFirst: boolean;
  write: (audit: AuditStore, rows: ReturnType<typeof arrivalRows>) => Promise<unknown>;
}

/**
 * One measured pass over the storm's first `requests` records, from an empty database the build's
 * own migrations made (no pass pays for another's rows): the wall time and every process group's
 * CPU while `connections` lanes write it, `chunk` requests a statement.
 */
export async function measuredPass(
  modules: PassModules,
  options: Pick<PgCeilingOptions, 'databaseUrl' | 'requests' | 'pods' | 'partitions' | 'agents' | 'connections'>,
  storm: StormRows,
  spec: PassSpec,
): Promise<{ seconds: number; cpu: CpuUsage }> {
  await dropDatabase(options.databaseUrl);
  await modules.db.migrate(options.databaseUrl);
  const pool = modules.db.createPool(options.databaseUrl, options.connections);
  try {
    const audit = new modules.audit.AuditStore(pool, 'bench-pg');
    const duplicates = new Uint32Array(options.pods.length);
    const primaries: string[] = [];
    const groups = [{ name: 'bench process', pids: [process.pid] }];
    if (spec.checkpointFirst) await checkpoint(pool);
    const before = cpuSnapshot(groups);
    const seconds = await lanes(options.connections, options.requests, spec.chunk, spec.label, (from, to) =>
      spec.write(audit, arrivalRows(options, storm.rules, storm.order, duplicates, primaries, from, to, storm.now)).then(() => undefined),
    );
    return { seconds, cpu: cpuBetween(before, cpuSnapshot(groups)) };
  } finally {
    await pool.end();
  }
}

/**
 * Postgres' own ceiling for the storm's rows, on the same server, in a fresh database migrated like
 * Arbiter's (same tables, partitions and indexes), written with Arbiter's own AuditStore statements.
 */
export async function runPgCeiling(options: PgCeilingOptions): Promise<PgCeilingResult> {
  const storm = stormRows(options);
  const pass = (label: string, chunk: number, write: PassSpec['write']) => measuredPass(THIS_CHECKOUT, options, storm, { label, chunk, checkpointFirst: false, write });
  try {
    // 1. Bulk insert of the decision rows alone.
    const decisions = await pass('pg decisions', options.bulkChunk, (audit, rows) => audit.insertDecisions(audit.pool, rows.arrivals));
    // 2. The arrival write set, as intake.ts makes it durable.
    const arrivals = await pass('pg arrivals', options.arrivalChunk, (audit, rows) => writeArrivalSet(audit, rows));
    return {
      connections: options.connections,
      decisions: { rows: options.requests, seconds: decisions.seconds, rowsPerSecond: options.requests / decisions.seconds, chunk: options.bulkChunk },
      arrivals: { requests: options.requests, seconds: arrivals.seconds, requestsPerSecond: options.requests / arrivals.seconds, chunk: options.arrivalChunk },
      cpu: { decisions: decisions.cpu, arrivals: arrivals.cpu },
    };
  } finally {
    if (!options.keep) await dropDatabase(options.databaseUrl);
  }
}
