import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Serde, topicNames } from '../../src/index.ts';
import { WORKER_MALLOC_ENV } from '../../src/worker/index.ts';
import { stackDown, stackUp } from '../stack/index.ts';
import type { ExecutionCheck, StormResult } from './arbiter-run.ts';
import { allFinal, runArm, type ArmContext, type ArmResult } from './arm.ts';
import { prepareBaseline, type BaselineBuild } from './baseline.ts';
import { runBareLoop, type BareLoopResult } from './bare-loop.ts';
import { benchKafka, type BenchTopics, type LoadResult } from './kafka.ts';
import type { ProbeResult } from './latency-probe.ts';
import { describeMachine, type MachineDescription } from './machine.ts';
import { runMicro, type MicroResult } from './micro.ts';
import type { OutcomeTopicCheck } from './outcome-check.ts';
import { runCopyCeiling, type CopyCeilingResult } from './pg-copy-ceiling.ts';
import { runPgCeiling, type PgCeilingResult } from './pg-ceiling.ts';
import { executionPathClean, loadBuild, runPgExecutions, type PgExecutionsResult } from './pg-executions.ts';
import { median, runPgArrivals, type PgArrivalsResult } from './pg-arrivals.ts';
import { summarizeProfiles, type ProfileSummary } from './profile.ts';
import { note } from './progress.ts';
import { benchFleet, encodeStorm, REPLICAS, type TargetPod } from './storm.ts';
import { comparisonRow, cpuPerRequest, groupUs, ratio, type ComparisonRow, type CpuPerRequest } from './summary.ts';
import { databaseUrlFor, dropDatabase, maintenanceUrl, mergeConfig, REPO_ROOT, workerSemiSpace } from '../support/index.ts';

export type BenchPhase = 'bare' | 'pg' | 'probe' | 'micro';

export interface BenchOptions {
  quick: boolean;
  requests: number;
  /** Pods the storm targets (rounded up to whole deployments of 9). */
  resources: number;
  workers: number;
  partitions: number;
  agents: number;
  seed: number;
  probeRate: number;
  probeSeconds: number;
  probeResources: number;
  /** Multiplies the simulated fleet's action latencies (restart: 300 ms × scale). */
  latencyScale: number;
  skip: Set<BenchPhase>;
  profile: boolean;
  keep: boolean;
  /** Load the storm before starting the workers (they join while the backlog waits, and rebalance). */
  preload: boolean;
  timeoutMinutes: number;
  /** Merged over the bench's worker config (arrays replaced). */
  workerConfig: Record<string, unknown>;
  /** `node --max-old-space-size` for every worker (both builds), as a container memory limit sets it. */
  workerHeapMb?: number;
  /** A git ref whose worker runs the same storm first, on the same broker and server (`--baseline`). */
  baseline: string | null;
  /**
   * Run this checkout before the baseline (`--current-first`). Whichever arm runs second pays
   * ~10–20 % more CPU per unit of work on this machine (an A/A run, docs/BENCHMARKS.md tenth pass),
   * so a fair comparison is two runs, one in each order.
   */
  currentFirst?: boolean;
  /** Bare-loop runs to take the median of (default: 3 under 500,000 records, else 1). */
  bareRuns?: number;
}


/** Worker settings that differ from the defaults, and why. */
const COALESCE_WINDOW_MS = 6 * 60 * 60 * 1000; // longer than any run: each pod executes exactly once

export interface BenchResult {
  machine: MachineDescription;
  options: Omit<BenchOptions, 'skip'> & { skip: BenchPhase[] };
  fleet: { stormResources: number; probeResources: number; deployments: number; replicas: number };
  storm: { requests: number; distinctPods: number; duplicatesPerPod: number; encodedBytes: number };
  /** This checkout's worker (the fields below repeat its figures, as results before `--baseline` had them). */
  current: ArmResult;
  /** The `--baseline` commit's worker, run first on the same storm, broker and server. */
  baseline: ArmResult | null;
  /** current ÷ baseline for the headline figures. */
  comparison: ComparisonRow[] | null;
  load: LoadResult;
  /** The median of the bare-loop runs. */
  bare: BareLoopResult | null;
  bareRuns: number[];
  arbiter: StormResult;
  outcomeTopic: OutcomeTopicCheck;
  /** Arbiter's end-to-end throughput over the bare loop's, on the same records, broker and database. */
  ratioToBareLoop: number | null;
  baselineRatioToBareLoop: number | null;
  /**
   * Arbiter's end-to-end throughput over PostgreSQL's own ceiling for the arrival write set (the
   * `pg` phase, nothing else running): how much of what the audit trail alone allows the whole
   * pipeline reaches. Absent in results saved before issue 12's sixteenth pass.
   */
  ratioToArrivalCeiling?: number | null;
  baselineRatioToArrivalCeiling?: number | null;
  /** Decision latency at a steady rate: on pods never touched, then on pods already restarted. */
  probes: ProbeResult[];
  executions: ExecutionCheck;
  pg: PgCeilingResult | null;
  /** PostgreSQL's COPY ceiling for the narrow duplicate row. */
  copy: CopyCeilingResult | null;
  /** PostgreSQL's cost of the execution path alone, this checkout's and the baseline's (the `pg` phase). */
  executionPath: { current: PgExecutionsResult; baseline: PgExecutionsResult | null } | null;
  /** PostgreSQL's cost of the arrival write set alone, this checkout's and the baseline's, in turns (the `pg` phase). Absent in results saved before issue 12's twelfth pass. */
  arrivalPath?: { current: PgArrivalsResult; baseline: PgArrivalsResult | null } | null;
  /** CPU per record of the bare loop's processes. */
  bareCpu: CpuPerRequest | null;
  micro: MicroResult | null;
  profile: ProfileSummary | null;
  workerConfig: Record<string, unknown>;
  /** The workers' V8 old-space cap (`--worker-heap-mb`), or null for Node's default sizing. */
  workerHeapMb?: number | null;
  /** The glibc malloc settings the workers ran with (both builds): the image's unless the bench's environment set them. */
  workerMalloc?: Record<string, string>;
  /** The workers' semi-space flag (both builds): the image's unless the bench's NODE_OPTIONS set one. Absent in results saved before issue 12's sixteenth pass. */
  workerSemiSpace?: { flag: string; fromImage: boolean };
  /** Whether the bench started the broker itself, and with which extra JVM options. Absent in results saved before issue 12's fifteenth pass. */
  broker?: BrokerFixture;
  verdict: { allFinal: boolean; executionsOk: boolean; baselineOk: boolean | null; ratioTargetMet: boolean | null; latencyTargetMet: boolean | null; ok: boolean };
}

/**
 * A broker the bench starts for itself compiles with C1 only. A fresh broker's C2 compiler threads
 * took 38–41 % of its CPU in ~100 s runs (issue 12, fourteenth pass), unevenly between the arms:
 * the cost of a broker's first minutes, not of Arbiter's traffic, which a long-running broker pays
 * once. ARBITER_KAFKA_JVM_OPTIONS, when set (empty for the JVM's own tiers), wins. A broker that
 * is already running is used as it is.
 */
export const BENCH_BROKER_JVM_OPTIONS = '-XX:TieredStopAtLevel=1';

export interface BrokerFixture {
  startedByBench: boolean;
  /** The extra JVM options it started with ('' for none); null when it was already running. */
  jvmOptions: string | null;
}

export function benchStackEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, ARBITER_KAFKA_JVM_OPTIONS: env.ARBITER_KAFKA_JVM_OPTIONS ?? BENCH_BROKER_JVM_OPTIONS };
}

/**
 * The whole benchmark, in one run on one broker and one database server: encode the storm; with
 * `--baseline`, build that commit's worker and send the storm through it; send the same storm through
 * this checkout's worker; each time check every outcome and execution and probe latency at a steady
 * rate; then the bare kafkajs loop on the same records, and Postgres' own ceilings for the same rows.
 */
export async function runBench(options: BenchOptions, argv: string[]): Promise<BenchResult> {
  // Before anything starts: a baseline that does not build fails the run at once.
  const baselineBuild: BaselineBuild | null = options.baseline ? prepareBaseline(options.baseline) : null;
  const stackEnv = benchStackEnv(process.env);
  const endpoints = await stackUp({ log: note, env: stackEnv });
  const broker: BrokerFixture = endpoints.started.includes('kafka')
    ? { startedByBench: true, jvmOptions: stackEnv.ARBITER_KAFKA_JVM_OPTIONS ?? '' }
    : { startedByBench: false, jvmOptions: null };
  const id = randomBytes(3).toString('hex');
  const prefix = `bench-${id}`;
  const pgCeilingUrl = databaseUrlFor(endpoints.databaseUrl, `arbiter_bench_${id}_pg`);
  const dir = mkdtempSync(join(tmpdir(), `arbiter-bench-${id}-`));
  note(`run ${id}: topics ${prefix}.*${baselineBuild ? ` and ${prefix}-base.*` : ''}, databases arbiter_bench_${id}*, scratch ${dir}`);

  const kafka = benchKafka(endpoints.kafkaBrokers, `arbiter-bench-${id}`);
  const admin = kafka.admin();
  await admin.connect();
  // What the arms started (stopped first) and created (removed unless --keep), newest first.
  const owned: Array<{ stop?: () => Promise<unknown>; remove?: () => Promise<unknown> }> = [];
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      for (const o of [...owned].reverse()) await o.stop?.().catch(() => {});
      if (!options.keep) {
        for (const o of [...owned].reverse()) await o.remove?.().catch(() => {});
        await dropDatabase(pgCeilingUrl).catch(() => {});
        if (!options.profile) rmSync(dir, { recursive: true, force: true });
      }
      await admin.disconnect().catch(() => {});
      if (endpoints.started.length) await stackDown({ services: endpoints.started, log: note, env: stackEnv }).catch(() => {});
    })());
  // Ctrl-C or a kill: stop the workers and remove the run's topics and databases before leaving.
  const onSignal = (signal: NodeJS.Signals) => {
    note(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const machineDb = new pg.Pool({ connectionString: maintenanceUrl(endpoints.databaseUrl), max: 1, application_name: 'arbiter-bench' });
    const machine = await describeMachine(machineDb, argv).finally(() => machineDb.end());
    const fleet = benchFleet(options.resources, options.skip.has('probe') ? 0 : options.probeResources, options.partitions);
    const serde = new Serde(endpoints.schemaRegistryUrl, topicNames(prefix));
    await serde.register();

    note(`encoding ${options.requests.toLocaleString()} requests over ${fleet.stormPods.length.toLocaleString()} pods`);
    const storm = await encodeStorm(serde, { requests: options.requests, pods: fleet.stormPods, agents: options.agents, seed: options.seed, label: 'encode storm' });
    // Two probes at the same steady rate: pods the storm never touched (1 request in ~100 starts an
    // execution, as in the storm), then pods it already restarted (every request coalesces at once).
    const probeCount = Math.round(options.probeRate * options.probeSeconds);
    const probeSets = options.skip.has('probe')
      ? []
      : [
          { label: 'new pods', records: await encodeStorm(serde, { requests: probeCount, pods: fleet.probePods, agents: options.agents, seed: options.seed + 1, keepRequestIds: true, label: 'encode probe' }) },
          { label: 'executed pods', records: await encodeStorm(serde, { requests: probeCount, pods: fleet.stormPods, agents: options.agents, seed: options.seed + 2, keepRequestIds: true, label: 'encode probe' }) },
        ];
    const micro = options.skip.has('micro') ? null : await runMicro(serde, storm);
    if (micro) note(`per record: Serde decode ${micro.serdeDecodeRequestUs.toFixed(1)} µs, encode ${micro.serdeEncodeOutcomeUs.toFixed(1)} µs`);

    const timeoutMs = options.timeoutMinutes * 60_000;
    // The loop over a small storm lasts about a second: take the median of several, each in a group of its own.
    const bareRuns: BareLoopResult[] = [];
    const measureBareLoop = async (topics: BenchTopics) => {
      const runs = options.bareRuns ?? (storm.count < 500_000 ? 3 : 1);
      for (let i = 0; !options.skip.has('bare') && i < runs; i++) {
        bareRuns.push(
          await runBareLoop({
            admin,
            brokers: endpoints.kafkaBrokers,
            topic: topics.requests,
            outTopic: topics.bareOut,
            groupId: `${prefix}-bare-${i + 1}`,
            processes: options.workers,
            partitionsConsumedConcurrently: 4,
            chunk: 1_000,
            total: storm.count,
            timeoutMs,
          }),
        );
      }
      if (bareRuns.length > 1) note(`bare loop runs: ${bareRuns.map((b) => Math.round(b.recordsPerSecond).toLocaleString()).join(', ')} rec/s; using the median`);
      const median = bareRuns.length ? [...bareRuns].sort((a, b) => a.recordsPerSecond - b.recordsPerSecond)[Math.floor(bareRuns.length / 2)]! : null;
      if (median) note(`bare loop: ${Math.round(median.recordsPerSecond).toLocaleString()} rec/s over ${median.seconds.toFixed(1)} s`);
      return median;
    };

    const workerConfig = mergeConfig(
      {
        kafka: { requestPartitions: options.partitions },
        actions: { restart: { coalesceWindowMs: COALESCE_WINDOW_MS } },
      },
      options.workerConfig,
    );
    const profileDir = options.profile ? join(dir, 'cpu-profiles') : undefined;
    if (profileDir) mkdirSync(profileDir, { recursive: true });
    let bare: BareLoopResult | null = null;
    const ctx: ArmContext = {
      endpoints,
      kafka,
      admin,
      dir,
      fleet,
      latencyScale: options.latencyScale,
      storm,
      probeSets,
      probeRate: options.probeRate,
      workers: options.workers,
      partitions: options.partitions,
      workerConfig,
      preload: options.preload,
      timeoutMs,
      ...(profileDir ? { profileDir } : {}),
      ...(options.workerHeapMb ? { workerHeapMb: options.workerHeapMb } : {}),
      own: (resource) => owned.push(resource),
    };

    // The baseline first (unless --current-first), then this checkout: the same records, each build
    // with its own topics, database and fleet (its own sim: the same request ids must not count as
    // executed twice).
    const runBaseline = () => (baselineBuild ? runArm(ctx, { name: 'baseline', prefix: `${prefix}-base`, database: `arbiter_bench_${id}_base`, build: baselineBuild }) : Promise.resolve(null));
    const runCurrent = () =>
      runArm(
        {
          ...ctx,
          // Storm first, then the bare loop on it, then workers that join while the whole backlog waits.
          afterPreload: async (topics) => {
            bare = await measureBareLoop(topics);
          },
        },
        { name: 'current', prefix, database: `arbiter_bench_${id}` },
      );
    const { baseline, current } = await inArmOrder(options.currentFirst === true, runBaseline, runCurrent);
    const profile = profileDir ? summarizeProfiles(profileDir) : null;
    // Same records, same broker, a group of its own; run once the workers are gone so it has the machine to itself.
    if (!options.preload) bare = await measureBareLoop(current.topics);
    const bareResult = bare as BareLoopResult | null;

    const pgResult = options.skip.has('pg')
      ? null
      : await runPgCeiling({
          databaseUrl: pgCeilingUrl,
          requests: storm.count,
          pods: fleet.stormPods,
          partitions: options.partitions,
          agents: options.agents,
          seed: options.seed,
          connections: options.workers,
          bulkChunk: 10_000,
          arrivalChunk: 1_000,
          keep: options.keep,
        });
    const copy = options.skip.has('pg')
      ? null
      : await runCopyCeiling({ databaseUrl: pgCeilingUrl, rows: storm.count, pods: fleet.stormPods, agents: options.agents, seed: options.seed, connections: options.workers, chunk: 1_000, keep: options.keep });
    if (copy) note(`COPY ceiling, narrow duplicate rows: ${Math.round(copy.rowsPerSecond).toLocaleString()} rows/s`);
    const executionPath = options.skip.has('pg') ? null : await measureExecutionPath(options, pgCeilingUrl, baselineBuild);
    const arrivalPath = options.skip.has('pg') ? null : await measureArrivalPath(options, pgCeilingUrl, baselineBuild, fleet.stormPods);

    const ratioToBareLoop = ratio(current.arbiter.requestsPerSecond, bareResult?.recordsPerSecond);
    const baselineRatioToBareLoop = baseline ? ratio(baseline.arbiter.requestsPerSecond, bareResult?.recordsPerSecond) : null;
    const ratioToArrivalCeiling = ratio(current.arbiter.requestsPerSecond, pgResult?.arrivals.requestsPerSecond);
    const baselineRatioToArrivalCeiling = baseline ? ratio(baseline.arbiter.requestsPerSecond, pgResult?.arrivals.requestsPerSecond) : null;
    const currentFinal = allFinal(current);
    const baselineOk = baseline ? allFinal(baseline) && baseline.executions.ok : null;
    const executionPathOk = executionPath ? executionPathClean(executionPath.current) : null;
    if (baselineOk === false) note(`the baseline ${baseline!.label} fails its own checks (reported, not this run's verdict)`);
    const verdict = {
      allFinal: currentFinal,
      executionsOk: current.executions.ok,
      baselineOk,
      ratioTargetMet: ratioToBareLoop === null ? null : ratioToBareLoop >= 0.25,
      latencyTargetMet: current.probes.length ? current.probes.every((p) => p.decisionLatencyMs.p99 < 50) : null,
      executionPathOk,
      ok: currentFinal && current.executions.ok && executionPathOk !== false,
    };
    const strip = ({ topics: _t, databaseUrl: _d, ...arm }: typeof current): ArmResult => arm;
    const currentArm = strip(current);
    const baselineArm = baseline ? strip(baseline) : null;
    return {
      machine,
      options: { ...options, skip: [...options.skip] },
      fleet: { stormResources: fleet.stormPods.length, probeResources: fleet.probePods.length, deployments: fleet.spec.deployments.length, replicas: REPLICAS },
      storm: { requests: storm.count, distinctPods: storm.distinctPods, duplicatesPerPod: storm.count / storm.distinctPods, encodedBytes: storm.bytes },
      current: currentArm,
      baseline: baselineArm,
      comparison: baselineArm ? compareArms(baselineArm, currentArm, bareResult) : null,
      load: current.load,
      bare: bareResult,
      bareRuns: bareRuns.map((b) => b.recordsPerSecond),
      arbiter: current.arbiter,
      outcomeTopic: current.outcomeTopic,
      ratioToBareLoop,
      baselineRatioToBareLoop,
      ratioToArrivalCeiling,
      baselineRatioToArrivalCeiling,
      probes: current.probes,
      executions: current.executions,
      pg: pgResult,
      copy,
      executionPath,
      arrivalPath,
      bareCpu: bareResult ? cpuPerRequest(bareResult.cpu, bareResult.records) : null,
      micro,
      profile,
      workerConfig,
      workerHeapMb: options.workerHeapMb ?? null,
      workerMalloc: Object.fromEntries(Object.entries(WORKER_MALLOC_ENV).map(([name, value]) => [name, process.env[name] ?? value])),
      workerSemiSpace: workerSemiSpace(process.env),
      broker,
      verdict,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

/** The before/after table: each headline figure for the baseline and this checkout, and their ratio. */
export function compareArms(baseline: ArmResult, current: ArmResult, bare: BareLoopResult | null): ComparisonRow[] {
  const probe = (arm: ArmResult, label: string) => arm.probes.find((p) => p.label === label);
  const peak = (arm: ArmResult) => Math.max(...arm.arbiter.peakRssMb.filter(Number.isFinite));
  const rows = [
    comparisonRow('decided + audited, requests/s', baseline.arbiter.requestsPerSecond, current.arbiter.requestsPerSecond, 'higher'),
    comparisonRow('ratio to the bare loop', ratio(baseline.arbiter.requestsPerSecond, bare?.recordsPerSecond), ratio(current.arbiter.requestsPerSecond, bare?.recordsPerSecond), 'higher'),
    comparisonRow('CPU µs/request, all processes', baseline.cpu.totalUs, current.cpu.totalUs, 'lower'),
    comparisonRow('CPU µs/request, workers', groupUs(baseline.cpu, 'arbiter workers'), groupUs(current.cpu, 'arbiter workers'), 'lower'),
    comparisonRow('CPU µs/request, postgres', groupUs(baseline.cpu, 'postgres'), groupUs(current.cpu, 'postgres'), 'lower'),
    comparisonRow('CPU µs/request, kafka broker', groupUs(baseline.cpu, 'kafka broker'), groupUs(current.cpu, 'kafka broker'), 'lower'),
    // The fleet does the same work for either build: its ratio is how much slower the machine was
    // during this checkout's arm (it drifts by 10-40 % within a session here).
    comparisonRow('CPU µs/request, simulated fleet (same work in both arms: the machine)', groupUs(baseline.cpu, 'simulated fleet'), groupUs(current.cpu, 'simulated fleet'), 'lower'),
    comparisonRow('peak worker RSS, MiB', peak(baseline), peak(current), 'lower'),
    comparisonRow('lag back to 0 after the last record, s', baseline.arbiter.lagZeroSeconds, current.arbiter.lagZeroSeconds, 'lower'),
  ];
  for (const label of ['new pods', 'executed pods']) {
    const b = probe(baseline, label);
    const c = probe(current, label);
    if (!b || !c) continue;
    rows.push(comparisonRow(`p99 first decision, ${label}, ms`, b.decisionLatencyMs.p99, c.decisionLatencyMs.p99, 'lower'));
    rows.push(comparisonRow(`p99 append → durable + published outcome, ${label}, ms`, b.durableOutcomeLatencyMs.p99, c.durableOutcomeLatencyMs.p99, 'lower'));
  }
  return rows;
}

/**
 * The execution path's PostgreSQL cost for this checkout, then the baseline, each on a fresh
 * database of the same server (`pg` phase). A baseline build too old for the stores' current calls
 * is reported as not measured rather than failing the run.
 */
async function measureExecutionPath(options: BenchOptions, databaseUrl: string, baseline: BaselineBuild | null): Promise<BenchResult['executionPath']> {
  const settings = { databaseUrl, executions: options.quick ? 500 : 5_000, concurrency: 20, keep: options.keep };
  const current = await runPgExecutions(await loadBuild('this checkout', REPO_ROOT), settings);
  note(`execution path: ${Math.round(current.postgresUsPerExecution).toLocaleString()} µs of PostgreSQL CPU per execution (this checkout)`);
  let base: PgExecutionsResult | null = null;
  if (baseline) {
    try {
      base = await runPgExecutions(await loadBuild(`baseline ${baseline.ref}`, baseline.dir), settings);
      note(`execution path: ${Math.round(base.postgresUsPerExecution).toLocaleString()} µs per execution (baseline ${baseline.ref})`);
    } catch (error) {
      note(`execution path of the baseline not measured: ${(error as Error).message}`);
    }
  }
  return { current, baseline: base };
}

/**
 * The arrival write set's PostgreSQL cost for this checkout and the baseline, in turns on fresh
 * databases of the same server (`pg` phase). A baseline build whose AuditStore cannot take today's
 * arrival rows is reported as not measured, and this checkout is measured alone.
 */
async function measureArrivalPath(options: BenchOptions, databaseUrl: string, baseline: BaselineBuild | null, pods: TargetPod[]): Promise<BenchResult['arrivalPath']> {
  const settings = {
    databaseUrl,
    requests: options.quick ? 10_000 : 100_000,
    pods,
    partitions: options.partitions,
    agents: options.agents,
    seed: options.seed,
    connections: options.workers,
    chunk: 1_000,
    keep: options.keep,
  };
  // Short passes, several in turns: one pass now and then costs a third more (whatever the server
  // did meanwhile), so the median is reported.
  const passes = options.quick ? 2 : 4;
  const current = await loadBuild('this checkout', REPO_ROOT);
  if (baseline) {
    try {
      const [c, b] = await runPgArrivals([current, await loadBuild(`baseline ${baseline.ref}`, baseline.dir)], settings, passes);
      note(`arrival path: ${median(c!.postgresUsPerRequest).toFixed(1)} µs of PostgreSQL CPU per request (this checkout), ${median(b!.postgresUsPerRequest).toFixed(1)} (baseline ${baseline.ref})`);
      return { current: c!, baseline: b! };
    } catch (error) {
      note(`arrival path of the baseline not measured: ${(error as Error).message}`);
    }
  }
  const [c] = await runPgArrivals([current], settings, passes);
  note(`arrival path: ${median(c!.postgresUsPerRequest).toFixed(1)} µs of PostgreSQL CPU per request (this checkout)`);
  return { current: c!, baseline: null };
}

/** Runs the two arms one after the other, the baseline first unless `currentFirst`. */
export async function inArmOrder<B, C>(currentFirst: boolean, runBaseline: () => Promise<B>, runCurrent: () => Promise<C>): Promise<{ baseline: B; current: C }> {
  if (currentFirst) {
    const current = await runCurrent();
    return { baseline: await runBaseline(), current };
  }
  const baseline = await runBaseline();
  return { baseline, current: await runCurrent() };
}
