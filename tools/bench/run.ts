import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Serde, topicNames } from '../../src/index.ts';
import { ensureDatabase, migrate } from '../../src/db/index.ts';
import { stackDown, stackUp } from '../stack/index.ts';
import { checkExecutions, runStorm, workerPidGroups, type ExecutionCheck, type StormResult } from './arbiter-run.ts';
import { runBareLoop, type BareLoopResult } from './bare-loop.ts';
import { benchKafka, createBenchTopics, deleteBenchTopics, loadRecords, type LoadResult } from './kafka.ts';
import { runLatencyProbe, type ProbeResult } from './latency-probe.ts';
import { describeMachine, type MachineDescription } from './machine.ts';
import { runMicro, type MicroResult } from './micro.ts';
import { runPgCeiling, type PgCeilingResult } from './pg-ceiling.ts';
import { summarizeProfiles, type ProfileSummary } from './profile.ts';
import { note } from './progress.ts';
import { startSimProcess, type SimProcess } from './sim-process.ts';
import { benchFleet, encodeStorm, stormMessage, REPLICAS } from './storm.ts';
import { databaseUrlFor, dropDatabase, mergeConfig, prepareWorkers, startWorkers as startWorkerProcesses, type WorkerProcess } from '../support/index.ts';

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
}


/** Worker settings that differ from the defaults, and why. */
const COALESCE_WINDOW_MS = 6 * 60 * 60 * 1000; // longer than any run: each pod executes exactly once

export interface BenchResult {
  machine: MachineDescription;
  options: Omit<BenchOptions, 'skip'> & { skip: BenchPhase[] };
  fleet: { stormResources: number; probeResources: number; deployments: number; replicas: number };
  storm: { requests: number; distinctPods: number; duplicatesPerPod: number; encodedBytes: number };
  load: LoadResult;
  /** The median of the bare-loop runs (three for storms under 500,000 records, else one). */
  bare: BareLoopResult | null;
  bareRuns: number[];
  arbiter: StormResult;
  /** Arbiter's end-to-end throughput over the bare loop's, on the same records, broker and database. */
  ratioToBareLoop: number | null;
  /** Decision latency at a steady rate: on pods never touched, then on pods already restarted. */
  probes: ProbeResult[];
  executions: ExecutionCheck;
  pg: PgCeilingResult | null;
  micro: MicroResult | null;
  profile: ProfileSummary | null;
  workerConfig: Record<string, unknown>;
  verdict: { allFinal: boolean; executionsOk: boolean; ratioTargetMet: boolean | null; latencyTargetMet: boolean | null; ok: boolean };
}

/**
 * The whole benchmark, in one run on one broker and one database server: encode the storm, start the
 * workers and send it to them (or, with `preload`, load it first), probe latency at a steady rate,
 * check executions, then measure the bare kafkajs loop on the same records and Postgres' own insert
 * ceiling for the same rows.
 */
export async function runBench(options: BenchOptions, argv: string[]): Promise<BenchResult> {
  const endpoints = await stackUp({ log: note });
  const id = randomBytes(3).toString('hex');
  const prefix = `bench-${id}`;
  const groupId = `${prefix}-workers`;
  const databaseUrl = databaseUrlFor(endpoints.databaseUrl, `arbiter_bench_${id}`);
  const pgCeilingUrl = databaseUrlFor(endpoints.databaseUrl, `arbiter_bench_${id}_pg`);
  const dir = mkdtempSync(join(tmpdir(), `arbiter-bench-${id}-`));
  note(`run ${id}: topics ${prefix}.*, database arbiter_bench_${id}, scratch ${dir}`);

  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);
  const db = new pg.Pool({ connectionString: databaseUrl, max: 3, application_name: 'arbiter-bench' });
  const kafka = benchKafka(endpoints.kafkaBrokers, `arbiter-bench-${id}`);
  const admin = kafka.admin();
  await admin.connect();
  let sim: SimProcess | undefined;
  let workers: WorkerProcess[] = [];
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      await Promise.all(workers.map((w) => w.stop().catch(() => null)));
      await sim?.close();
      await db.end().catch(() => {});
      if (!options.keep) {
        await deleteBenchTopics(admin, { ...topicNames(prefix), bareOut: `${prefix}.bare-out` }).catch((e: Error) => note(`could not delete topics: ${e.message}`));
        await dropDatabase(databaseUrl).catch((e: Error) => note(`could not drop database: ${e.message}`));
        await dropDatabase(pgCeilingUrl).catch(() => {});
        if (!options.profile) rmSync(dir, { recursive: true, force: true });
      }
      await admin.disconnect().catch(() => {});
      if (endpoints.started.length) await stackDown({ services: endpoints.started, log: note }).catch(() => {});
    })());
  // Ctrl-C or a kill: stop the workers and remove the run's topics and databases before leaving.
  const onSignal = (signal: NodeJS.Signals) => {
    note(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const machine = await describeMachine(db, argv);
    const fleet = benchFleet(options.resources, options.skip.has('probe') ? 0 : options.probeResources, options.partitions);
    sim = await startSimProcess(fleet.spec, options.latencyScale, dir);
    const topics = await createBenchTopics(admin, prefix, options.partitions);
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
    const loadStorm = (quiet: boolean) => loadRecords(kafka, topics.requests, storm.count, (j) => stormMessage(storm, j), { label: 'load storm', quiet });
    // The loop over a small storm lasts about a second: take the median of three, each in a group of its own.
    const bareRuns: BareLoopResult[] = [];
    const measureBareLoop = async () => {
      for (let i = 0; !options.skip.has('bare') && i < (storm.count < 500_000 ? 3 : 1); i++) {
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
    const site = { kafkaBrokers: endpoints.kafkaBrokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, databaseUrl, topicPrefix: prefix, groupId, executorUrl: sim.url };
    const { configFile, env } = prepareWorkers(dir, site, workerConfig);
    const profileDir = options.profile ? join(dir, 'cpu-profiles') : undefined;
    if (profileDir) mkdirSync(profileDir, { recursive: true });
    const startWorkers = async () => {
      note(`starting ${options.workers} worker processes`);
      // Ready within two minutes: on a busy 2-core machine, N workers joining one group take a while.
      workers = await startWorkerProcesses(
        options.workers,
        (i) => ({ id: `${prefix}-w${i + 1}`, configFile, env, ...(profileDir ? { cpuProfileDir: profileDir } : {}) }),
        120_000,
      );
    };
    const decideStorm = () =>
      runStorm({ db, admin, workers, groupId, requestsTopic: topics.requests, outcomesTopic: topics.outcomes, total: storm.count, timeoutMs, simPid: sim!.pid });

    let load: LoadResult;
    let bare: BareLoopResult | null = null;
    let arbiter: StormResult;
    if (options.preload) {
      // Storm first, then the bare loop on it, then workers that join while the whole backlog waits
      // (the first to join starts alone, and the group rebalances when the others arrive).
      load = await loadStorm(false);
      note(`loaded ${load.records.toLocaleString()} records in ${load.seconds.toFixed(1)} s (${Math.round(load.recordsPerSecond).toLocaleString()} rec/s)`);
      bare = await measureBareLoop();
      await startWorkers();
      arbiter = await decideStorm();
    } else {
      // Workers first, settled in their group; then the storm arrives as fast as kafkajs can produce it.
      await startWorkers();
      [load, arbiter] = await Promise.all([loadStorm(true), decideStorm()]);
      note(`loaded ${load.records.toLocaleString()} records in ${load.seconds.toFixed(1)} s (${Math.round(load.recordsPerSecond).toLocaleString()} rec/s), while the workers consumed`);
    }
    note(`arbiter: ${Math.round(arbiter.requestsPerSecond).toLocaleString()} requests/s over ${arbiter.seconds.toFixed(1)} s`);

    const probes: ProbeResult[] = [];
    for (const set of probeSets) {
      const probe = await runLatencyProbe({
        label: set.label,
        kafka,
        db,
        requestsTopic: topics.requests,
        outcomesTopic: topics.outcomes,
        groupPrefix: prefix,
        records: set.records,
        ratePerSecond: options.probeRate,
        timeoutMs: 120_000,
        pidGroups: workerPidGroups(workers, sim.pid),
      });
      note(`probe (${set.label}): p99 decision latency ${probe.decisionLatencyMs.p99.toFixed(1)} ms at ${Math.round(probe.achievedRate)} requests/s`);
      probes.push(probe);
    }

    const expected = storm.distinctPods + (probeSets[0]?.records.distinctPods ?? 0);
    const executions = await checkExecutions(db, sim, expected);

    await Promise.all(workers.map((w) => w.stop()));
    workers = [];
    const profile = profileDir ? summarizeProfiles(profileDir) : null;
    // Same records, same broker, a group of its own; run once the workers are gone so it has the machine to itself.
    if (!options.preload) bare = await measureBareLoop();

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

    const ratio = bare ? arbiter.requestsPerSecond / bare.recordsPerSecond : null;
    const allFinal = arbiter.missingFinal === 0 && probes.every((p) => p.missingOutcomes === 0);
    const verdict = {
      allFinal,
      executionsOk: executions.ok,
      ratioTargetMet: ratio === null ? null : ratio >= 0.5,
      latencyTargetMet: probes.length ? probes.every((p) => p.decisionLatencyMs.p99 < 50) : null,
      ok: allFinal && executions.ok,
    };
    return {
      machine,
      options: { ...options, skip: [...options.skip] },
      fleet: { stormResources: fleet.stormPods.length, probeResources: fleet.probePods.length, deployments: fleet.spec.deployments.length, replicas: REPLICAS },
      storm: { requests: storm.count, distinctPods: storm.distinctPods, duplicatesPerPod: storm.count / storm.distinctPods, encodedBytes: storm.bytes },
      load,
      bare,
      bareRuns: bareRuns.map((b) => b.recordsPerSecond),
      arbiter,
      ratioToBareLoop: ratio,
      probes,
      executions,
      pg: pgResult,
      micro,
      profile,
      workerConfig,
      verdict,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}
