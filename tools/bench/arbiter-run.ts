import type { Admin } from 'kafkajs';
import type pg from 'pg';
import type { SimProcess } from './sim-process.ts';
import { groupLag, topicRecords } from './kafka.ts';
import { cpuBetween, cpuSecondsOf, cpuSnapshot, memoryOf, type CpuSnapshot, type CpuUsage, type PidGroup } from './proc.ts';
import { note, progressBar } from './progress.ts';
import { sleep, summarize, type Summary } from './stats.ts';
import type { WorkerProcess } from '../support/index.ts';
import { scrapeWorker } from './worker-metrics.ts';

export interface StormSample {
  /** Seconds since the workers were ready. */
  t: number;
  /** Final decisions recorded so far (sum of the workers' arbiter_decisions_total). */
  decided: number;
  /** Consumer-group lag on the requests topic (records not yet committed). */
  lag: number;
  /** Resident memory of each worker, MiB. */
  rssMb: number[];
}

/*
 * Every question below is asked of arbiter.decisions, arbiter.final_outcomes and arbiter.requests,
 * never of request_state: the analyst views stay the same when coalesced duplicates stop having a
 * working-state row (issue 12), while request_state holds only what is still needed.
 */
const FINAL_REQUESTS = 'SELECT count(DISTINCT request_id)::int AS n FROM arbiter.decisions WHERE final';

export interface StormResult {
  requests: number;
  /** First decision (min decided_at) to the last request becoming final (max finished_at), from Postgres. */
  seconds: number;
  requestsPerSecond: number;
  /** Throughput over the middle of the run (10 %→90 % of decisions), free of start-up and tail. */
  steadyRequestsPerSecond: number;
  /** Seconds from the storm's last record appended to Kafka until the group's lag was 0 (every offset committed). */
  lagZeroSeconds: number;
  /** Seconds from the last request becoming final until every outcome was on the outcomes topic (or the outbox empty). */
  publishLagSeconds: number;
  /** Records on the outcomes topic after the storm (one per request, more if any was republished). */
  outcomeRecords: number;
  /** Final requests still in the outbox (or, before migration 0015, with outcome_published false) once their outcomes were on the topic; NaN when neither is there. */
  outboxUnflagged: number;
  /** Record appended to Kafka → first durable decision (arbiter.decisions.latency_ms), ms. Under a preloaded backlog, this is queueing time. */
  decisionLatencyMs: Summary;
  /** Final status of each request (arbiter.final_outcomes). */
  statuses: Record<string, number>;
  /** Requests with a final decision in Postgres (arbiter.decisions). */
  finalCount: number;
  missingFinal: number;
  samples: StormSample[];
  peakRssMb: number[];
  cpu: CpuUsage;
}

export interface StormRunOptions {
  db: pg.Pool;
  admin: Admin;
  workers: WorkerProcess[];
  groupId: string;
  requestsTopic: string;
  outcomesTopic: string;
  total: number;
  simPid?: number;
  timeoutMs: number;
  sampleEveryMs?: number;
  /** When the storm's last record was appended (the load finished); awaited after the storm is decided. */
  lastRecordAt: Promise<number>;
}

/**
 * The process groups whose CPU a phase reports. The bench's own PostgreSQL backend (benchBackends:
 * the connection its progress checks run on) counts as the bench's, not as Arbiter's PostgreSQL.
 */
export function workerPidGroups(workers: WorkerProcess[], simPid?: number, benchBackends: readonly number[] = []): PidGroup[] {
  return [
    { name: 'arbiter workers', pids: workers.map((w) => w.pid) },
    { name: 'bench process', pids: [process.pid, ...benchBackends] },
    ...(simPid ? [{ name: 'simulated fleet', pids: [simPid] }] : []),
  ];
}

/**
 * A connection of the bench's own, held for a phase, whose backend's CPU is attributed to the bench:
 * parallel query is off on it, so that no worker process of PostgreSQL's does its work unattributed.
 */
export async function benchConnection(db: pg.Pool): Promise<{ client: pg.PoolClient; backendPid: number; release(): Promise<void> }> {
  const client = await db.connect();
  try {
    const { rows } = await client.query('SELECT pg_backend_pid() AS pid');
    await client.query('SET max_parallel_workers_per_gather = 0');
    return {
      client,
      backendPid: Number(rows[0].pid),
      release: async () => {
        await client.query('RESET max_parallel_workers_per_gather').catch(() => undefined);
        client.release();
      },
    };
  } catch (error) {
    client.release();
    throw error;
  }
}

/**
 * Waits for the preloaded storm to be decided: every request final in Postgres. Samples progress,
 * consumer lag and worker memory every second (from /metrics and kafkajs admin, not from Postgres,
 * which is the thing under load).
 */
export async function runStorm(options: StormRunOptions): Promise<StormResult> {
  const { db, workers, total } = options;
  // The storm's progress checks count a million rows: on a connection of their own, its CPU the bench's.
  const checker = await benchConnection(db);
  const checkerCpuBefore = cpuSecondsOf(checker.backendPid)?.seconds ?? NaN;
  const groups = workerPidGroups(workers, options.simPid, [checker.backendPid]);
  const startedAt = Date.now();
  const cpuBefore = cpuSnapshot(groups);
  const samples: StormSample[] = [];
  const bar = progressBar('arbiter', total, 'lag {lag}');
  const until = startedAt + options.timeoutMs;
  let lastDbCheck = Date.now();
  let confirmed = false;
  let cpuAfter: CpuSnapshot;
  try {
    while (!confirmed) {
      const exited = workers.find((w) => !w.running());
      if (exited) throw new Error(`worker ${exited.id} exited during the storm:\n${exited.output()}`);
      const scraped = await Promise.all(workers.map(scrapeWorker));
      const decided = scraped.reduce((s, m) => s + (m?.finalDecisions ?? 0), 0);
      const lag = await groupLag(options.admin, options.groupId, options.requestsTopic).then((l) => l.lag, () => NaN);
      const rssMb = workers.map((w) => memoryOf(w.pid)?.rssMb ?? NaN);
      samples.push({ t: (Date.now() - startedAt) / 1000, decided, lag, rssMb });
      bar.update(Math.min(decided, total), { lag });
      // Postgres is the thing under load: asked only when the metrics say done, or every 30 s
      // (a worker's counters restart with it).
      if (decided >= total || Date.now() - lastDbCheck > 30_000) {
        lastDbCheck = Date.now();
        const { rows } = await checker.client.query(FINAL_REQUESTS);
        if (rows[0].n >= total) confirmed = true;
      }
      if (!confirmed && Date.now() > until) throw new Error(`the storm was not decided within ${options.timeoutMs / 1000} s (${decided}/${total} final per metrics)`);
      if (!confirmed) await sleep(options.sampleEveryMs ?? 1_000);
    }
    cpuAfter = cpuSnapshot(groups);
    note(`the bench's progress checks took ${((cpuSecondsOf(checker.backendPid)?.seconds ?? NaN) - checkerCpuBefore).toFixed(2)} core-seconds of PostgreSQL CPU (counted as the bench's)`);
  } finally {
    bar.stop();
    // Also when the storm fails: a connection still checked out would hold up the pool's end.
    await checker.release();
  }
  const peakRssMb = workers.map((w) => memoryOf(w.pid)?.peakMb ?? NaN);
  const lagZeroSeconds = await lagBackToZero(options);

  // Outcomes: every request's outcome on the outcomes topic, and the outbox empty.
  const publishWaitUntil = Date.now() + 60_000;
  const unpublishedQuery = await unpublishedAnswersQuery(db);
  let unpublished = NaN;
  let outcomeRecords = 0;
  let publishedAt = NaN;
  while (Date.now() < publishWaitUntil) {
    unpublished = await countOrNaN(db, unpublishedQuery);
    outcomeRecords = await topicRecords(options.admin, options.outcomesTopic);
    if (Number.isNaN(publishedAt) && (unpublished === 0 || outcomeRecords >= total)) publishedAt = Date.now();
    // A flag still unset once every outcome is on the topic is not going to be set: stop waiting after 5 s.
    if (unpublished === 0 || Number.isNaN(unpublished) || Date.now() - publishedAt > 5_000) break;
    await sleep(500);
  }
  if (unpublished > 0) note(`${unpublished} final requests are still in the outbox (${outcomeRecords} outcome records on the topic for ${total} requests)`);
  const timing = await db.query(`
    SELECT (EXTRACT(EPOCH FROM (SELECT min(decided_at) FROM arbiter.decisions)) * 1000)::float8 AS first_ms,
           (EXTRACT(EPOCH FROM (SELECT max(decided_at) FROM arbiter.decisions WHERE final)) * 1000)::float8 AS last_ms`);
  const firstMs = Number(timing.rows[0].first_ms);
  const lastMs = Number(timing.rows[0].last_ms);
  const seconds = (lastMs - firstMs) / 1000;
  const statusRows = await db.query('SELECT status, count(*)::int AS n FROM arbiter.final_outcomes GROUP BY status ORDER BY status');
  const statuses = Object.fromEntries(statusRows.rows.map((r) => [r.status as string, r.n as number]));
  const finalCount = (await db.query(FINAL_REQUESTS)).rows[0].n as number;
  const latencies = await firstDecisionLatencies(db);

  return {
    requests: total,
    seconds,
    requestsPerSecond: total / seconds,
    steadyRequestsPerSecond: steadyRate(samples, total),
    lagZeroSeconds,
    publishLagSeconds: Math.max(0, (publishedAt - lastMs) / 1000),
    outcomeRecords,
    outboxUnflagged: unpublished,
    decisionLatencyMs: summarize(latencies),
    statuses,
    finalCount,
    missingFinal: total - finalCount,
    samples,
    peakRssMb,
    cpu: cpuBetween(cpuBefore, cpuAfter),
  };
}

/**
 * The count of final requests whose answer is not yet marked published, for this database's schema:
 * rows of the outbox table (migration 0015), or, in a baseline's database from before it,
 * request_state's flag.
 */
export async function unpublishedAnswersQuery(db: pg.Pool): Promise<string> {
  const { rows } = await db.query("SELECT to_regclass('arbiter.outcome_outbox') IS NOT NULL AS outbox");
  return rows[0].outbox
    ? 'SELECT count(*)::int AS n FROM arbiter.outcome_outbox'
    : 'SELECT count(*)::int AS n FROM arbiter.request_state WHERE final AND NOT outcome_published';
}

/** A `count(*) AS n` query's answer; NaN when the schema has no such table or column. */
async function countOrNaN(db: pg.Pool, sql: string): Promise<number> {
  try {
    const { rows } = await db.query(sql);
    return rows[0].n as number;
  } catch {
    return NaN;
  }
}

/**
 * Seconds from the storm's last record appended until the group's lag reaches 0, polled every
 * 250 ms (the storm's own samples are a second apart). NaN if it is not 0 within two minutes.
 */
async function lagBackToZero(options: StormRunOptions): Promise<number> {
  const lastRecordAt = await options.lastRecordAt;
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    const { lag } = await groupLag(options.admin, options.groupId, options.requestsTopic).catch(() => ({ lag: NaN }));
    if (lag === 0) return Math.max(0, (Date.now() - lastRecordAt) / 1000);
    await sleep(250);
  }
  note('the consumer group\'s lag was not back to 0 within 2 minutes of the storm being decided');
  return NaN;
}

/** latency_ms of each request's first decision (ACCEPTED or an immediate final one). */
export async function firstDecisionLatencies(db: pg.Pool, requestIds?: string[]): Promise<Float64Array> {
  const { rows } = await db.query(
    `SELECT DISTINCT ON (request_id) latency_ms FROM arbiter.decisions
      WHERE latency_ms IS NOT NULL AND ($1::uuid[] IS NULL OR request_id = ANY($1::uuid[]))
      ORDER BY request_id, decided_at`,
    [requestIds ?? null],
  );
  return Float64Array.from(rows, (r) => Number(r.latency_ms));
}

/** Decisions per second between the samples where 10 % and 90 % of the storm was decided. */
function steadyRate(samples: StormSample[], total: number): number {
  const at = (fraction: number) => samples.find((s) => s.decided >= fraction * total);
  const a = at(0.1);
  const b = at(0.9);
  if (!a || !b || b.t <= a.t) return NaN;
  return (b.decided - a.decided) / (b.t - a.t);
}

export interface ExecutionCheck {
  expected: number;
  /** Executions the simulated fleet saw (GET /stats total). */
  executed: number;
  /** Requests that ended EXECUTED (primaries). */
  executedRequests: number;
  /** Distinct requests with a finished execution row: succeeded, or recovered (found applied by observation after an executor error or a partition move). */
  auditedExecutions: number;
  /** Of which recovered rather than succeeded. */
  recoveredExecutions: number;
  /** One requestId executed twice: the fleet's duplicate_execution violations. */
  duplicateExecutions: number;
  violations: Record<string, number>;
  /** When a resource executed more than once: its EXECUTED requests, where and by whom they were accepted. */
  doubled: Array<{ resourceArn: string; requestId: string; partition: number; acceptedBy: string | null; acceptedAt: string }>;
  /** Partitions whose requests were decided by more than one worker: the group rebalanced during the run. */
  partitionsWithSeveralOwners: number;
  ok: boolean;
}

/** executions == distinct (resource, action, window), audited, and never the same requestId twice. */
export async function checkExecutions(db: pg.Pool, sim: SimProcess, expected: number): Promise<ExecutionCheck> {
  const stats = await sim.stats();
  const violations = await sim.violations();
  const audited = await db.query(
    `SELECT count(DISTINCT request_id)::int AS n, count(*) FILTER (WHERE phase = 'recovered')::int AS recovered
       FROM arbiter.executions WHERE phase IN ('succeeded', 'recovered')`,
  );
  const executedRequests = (await db.query(`SELECT count(DISTINCT request_id)::int AS n FROM arbiter.decisions WHERE final AND status = 'EXECUTED'`)).rows[0].n as number;
  const auditedExecutions = audited.rows[0].n as number;
  const duplicateExecutions = violations.duplicate_execution ?? 0;
  const doubled = await db.query(
    `WITH executed AS (SELECT DISTINCT request_id, resource_arn FROM arbiter.decisions WHERE final AND status = 'EXECUTED')
     SELECT e.resource_arn, e.request_id, r.kafka_partition, d.worker_id, d.decided_at::text AS accepted_at
       FROM executed e
       LEFT JOIN arbiter.requests r ON r.request_id = e.request_id
       LEFT JOIN arbiter.decisions d ON d.request_id = e.request_id AND d.status = 'ACCEPTED'
      WHERE e.resource_arn IN (SELECT resource_arn FROM executed GROUP BY 1 HAVING count(*) > 1)
      ORDER BY e.resource_arn, d.decided_at
      LIMIT 40`,
  );
  const owners = await db.query(
    `SELECT count(*)::int AS n FROM (
       SELECT r.topic, r.kafka_partition FROM arbiter.decisions d JOIN arbiter.requests r ON r.request_id = d.request_id
        WHERE d.status = 'ACCEPTED' GROUP BY 1, 2 HAVING count(DISTINCT d.worker_id) > 1) p`,
  );
  return {
    expected,
    executed: stats.total,
    executedRequests,
    auditedExecutions,
    recoveredExecutions: audited.rows[0].recovered as number,
    duplicateExecutions,
    violations,
    doubled: doubled.rows.map((r) => ({
      resourceArn: r.resource_arn as string,
      requestId: r.request_id as string,
      partition: r.kafka_partition as number,
      acceptedBy: (r.worker_id as string | null) ?? null,
      acceptedAt: r.accepted_at as string,
    })),
    partitionsWithSeveralOwners: owners.rows[0].n as number,
    ok: stats.total === expected && executedRequests === expected && auditedExecutions === expected && duplicateExecutions === 0,
  };
}
