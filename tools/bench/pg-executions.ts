import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as AuditModule from '../../src/audit/index.ts';
import type * as CoalesceModule from '../../src/coalesce/index.ts';
import type * as SdkModule from '../../src/agent-sdk/index.ts';
import type * as DbModule from '../../src/db/index.ts';
import type * as LocksModule from '../../src/locks/index.ts';
import { dropDatabase } from '../support/index.ts';
import { cpuBetween, cpuSnapshot, type CpuUsage } from './proc.ts';
import { unpublishedAnswersQuery } from './arbiter-run.ts';
import { lanes } from './lanes.ts';

/**
 * PostgreSQL's cost of an execution's own statements, apart from the storm: the lease, the
 * 'started' phase, the final decision, the release and the outbox, as the worker sends them, with
 * each build's own stores — this checkout's and the baseline's, on the same server in the same run.
 * A storm has one execution per ~100 requests, so its PostgreSQL CPU per request hides this path in
 * the arrivals' noise; here it is alone.
 */
export interface PgExecutionsResult {
  label: string;
  executions: number;
  /** Executions in flight at once (as a storm's first seconds have them by the hundred). */
  concurrency: number;
  seconds: number;
  /** Statements sent per execution (concurrent ones share statements). */
  statementsPerExecution: number;
  /** PostgreSQL CPU (every server process) per execution. */
  postgresUsPerExecution: number;
  /** Whether the build released the lease in the final decision's statement (migration 0015 on). */
  releaseWithDecision: boolean;
  /** After the pass: locks still held, answers still in the outbox, requests not final. All 0, or the pass failed. */
  leftOver: { heldLocks: number; unpublished: number; open: number };
  cpu: CpuUsage;
}

/** Nothing left behind by the execution path: every lock released, every answer out of the outbox, every request final. */
export function executionPathClean(r: PgExecutionsResult): boolean {
  return r.leftOver.heldLocks === 0 && r.leftOver.unpublished === 0 && r.leftOver.open === 0;
}

/** The modules of one build the pass uses: this checkout's, or the baseline worktree's dist/. */
interface Build {
  label: string;
  audit: typeof AuditModule;
  locks: typeof LocksModule;
  db: typeof DbModule;
  sdk: typeof SdkModule;
  coalesce: typeof CoalesceModule;
  releaseWithDecision: boolean;
}

/** A build's modules from its directory (its dist/, built by the bench), typed as this checkout's: the APIs used here are older than issue 12's seventh pass. */
export async function loadBuild(label: string, dir: string): Promise<Build> {
  const load = (path: string) => import(join(dir, 'dist', 'src', path));
  return {
    label,
    audit: (await load('audit/index.js')) as typeof AuditModule,
    locks: (await load('locks/index.js')) as typeof LocksModule,
    db: (await load('db/index.js')) as typeof DbModule,
    sdk: (await load('agent-sdk/index.js')) as typeof SdkModule,
    coalesce: (await load('coalesce/index.js')) as typeof CoalesceModule,
    releaseWithDecision: existsSync(join(dir, 'migrations', '0015_outcome-outbox.sql')),
  };
}

const SCOPE = 'arn:aws:k8s:us-east-1:111122223333:cluster/bench/deployment/bench/exec';
const podArn = (i: number) => `arn:aws:k8s:us-east-1:111122223333:cluster/bench/pod/bench/exec-${i}`;

/**
 * `executions` accepted requests, each then run through the execution path by `concurrency` lanes,
 * on a fresh database migrated by the build itself. The CPU window covers only the execution path.
 */
export async function runPgExecutions(build: Build, options: { databaseUrl: string; executions: number; concurrency: number; keep?: boolean }): Promise<PgExecutionsResult> {
  const { AuditStore } = build.audit;
  const { LockStore } = build.locks;
  await dropDatabase(options.databaseUrl);
  await build.db.migrate(options.databaseUrl);
  const pool = build.db.createPool(options.databaseUrl, 4);
  let statements = 0;
  try {
    const audit = new AuditStore(pool, 'bench-executions');
    const locks = new LockStore(pool);
    const requests = Array.from({ length: options.executions }, (_, i) => build.sdk.buildRequest({ agentId: 'bench-agent', resourceArn: podArn(i), action: 'restart' }));
    for (let i = 0; i < requests.length; i += 500) {
      const arrivals = requests.slice(i, i + 500).map((request, j) => ({
        request,
        scope: SCOPE,
        topic: 'bench.requests',
        partition: 0,
        offset: String(i + j),
        reroutedFrom: null,
        coalesceKey: build.coalesce.coalesceKey(request.resourceArn, 'restart', {}),
        decision: { status: 'ACCEPTED' as const, rule: 'accept' as const, notBefore: Date.now(), detail: 'accepted' },
      }));
      await audit.recordArrivals({ arrivals, deadLetters: [] });
    }
    // Every pooled connection open before the window: connecting is not the path's cost.
    await Promise.all(Array.from({ length: 4 }, () => pool.query('SELECT pg_sleep(0.02)')));
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      statements++;
      return query(...args);
    };

    const groups = [{ name: 'bench process', pids: [process.pid] }];
    const before = cpuSnapshot(groups);
    const seconds = await lanes(options.concurrency, requests.length, 1, `pg exec ${build.label}`.slice(0, 14), (from) => executeOnce(build, audit, locks, requests[from]!));
    const cpu = cpuBetween(before, cpuSnapshot(groups));
    (pool as unknown as { query: unknown }).query = query;
    const count = async (sql: string) => (await pool.query(sql)).rows[0].n as number;
    const leftOver = {
      heldLocks: await count('SELECT count(*)::int AS n FROM arbiter.locks WHERE owner IS NOT NULL'),
      unpublished: await count(await unpublishedAnswersQuery(pool)),
      open: await count('SELECT count(*)::int AS n FROM arbiter.request_state WHERE NOT final'),
    };
    return {
      label: build.label,
      executions: requests.length,
      concurrency: options.concurrency,
      seconds,
      statementsPerExecution: statements / requests.length,
      postgresUsPerExecution: ((cpu.coreSeconds.postgres ?? 0) * 1e6) / requests.length,
      releaseWithDecision: build.releaseWithDecision,
      leftOver,
      cpu,
    };
  } finally {
    await pool.end();
    if (!options.keep) await dropDatabase(options.databaseUrl);
  }
}

/** One execution's statements, as head-runner.ts sends them (the executor's call left out: it is not PostgreSQL's). */
async function executeOnce(build: Build, audit: InstanceType<Build['audit']['AuditStore']>, locks: InstanceType<Build['locks']['LockStore']>, request: SdkModule.RemediationRequest) {
  const arn = request.resourceArn;
  const lease = await locks.acquire({ resourceArn: arn, owner: 'worker:bench', agentId: request.agentId, ttlMs: 60_000 });
  if (!lease.acquired) throw new Error(`the bench's own lease on ${arn} was refused`);
  const token = lease.fencingToken;
  const base = { requestId: request.requestId, resourceArn: arn, scope: SCOPE, action: 'restart', agentId: request.agentId, fencingToken: token, resourceVersion: null, detail: null };
  await audit.beginExecution({ ...base, phase: 'started' });
  const release = { resourceArn: arn, owner: 'worker:bench', fencingToken: token };
  await audit.finalize({
    decided: { request, scope: SCOPE, decision: { status: 'EXECUTED', rule: 'execute', resourceVersion: 2, fencingToken: token, detail: 'restarted' }, latencyMs: 5 },
    execution: { ...base, phase: 'succeeded', resourceVersion: 2, detail: 'restarted' },
    resource: { arn, scope: SCOPE, version: 2, expectedState: { action: 'restart', params: {}, version: 2 }, requestId: request.requestId, action: 'restart', agentId: request.agentId },
    ...(build.releaseWithDecision ? { release } : {}),
  });
  if (!build.releaseWithDecision) await locks.release(release);
  await audit.markPublished([request.requestId]);
}
