import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import pg from 'pg';
import { Serde, topicNames } from '../../src/index.ts';
import { ensureDatabase, migrate } from '../../src/db/index.ts';
import type { StackEndpoints } from '../stack/index.ts';
import { checkExecutions, runStorm, workerPidGroups, type ExecutionCheck, type StormResult } from './arbiter-run.ts';
import { migrateWithBin, type BaselineBuild } from './baseline.ts';
import { createBenchTopics, deleteBenchTopics, loadRecords, type BenchTopics, type LoadResult } from './kafka.ts';
import { runLatencyProbe, type ProbeResult } from './latency-probe.ts';
import { checkOutcomeTopic, type OutcomeTopicCheck } from './outcome-check.ts';
import { note } from './progress.ts';
import { checkpoint } from './pg-checkpoint.ts';
import { startSimProcess, type SimProcess } from './sim-process.ts';
import { stormMessage, type BenchFleet, type EncodedStorm } from './storm.ts';
import { cpuPerRequest, type CpuPerRequest } from './summary.ts';
import { databaseUrlFor, dropDatabase, prepareWorkers, startWorkers, type ConfigObject, type WorkerProcess } from '../support/index.ts';

/** One worker build under test: this checkout's, or the `--baseline` commit's. */
export interface ArmSpec {
  name: 'current' | 'baseline';
  /** Topic prefix (and consumer group) of its own. */
  prefix: string;
  /** Its own database on the shared server. */
  database: string;
  /** The baseline's build; none for this checkout. */
  build?: BaselineBuild;
}

/** What the storm on one broker, one database server, measured through one worker build. */
export interface ArmResult {
  name: 'current' | 'baseline';
  /** `this checkout` or `<ref> (<commit>)`. */
  label: string;
  commit: string | null;
  prefix: string;
  load: LoadResult;
  arbiter: StormResult;
  /** Each request's final outcome as agents see it, from the outcomes topic. */
  outcomeTopic: OutcomeTopicCheck;
  /** Storm requests without a final outcome in Postgres or on the topic (the larger of the two). */
  missingFinal: number;
  probes: ProbeResult[];
  executions: ExecutionCheck;
  /** CPU per request of each process group during the storm. */
  cpu: CpuPerRequest;
  build: BaselineBuild | null;
}

export interface ArmContext {
  endpoints: StackEndpoints;
  kafka: Kafka;
  admin: Admin;
  /** The bench's scratch directory; each arm writes its worker config in a folder of its own. */
  dir: string;
  fleet: BenchFleet;
  latencyScale: number;
  storm: EncodedStorm;
  probeSets: Array<{ label: string; records: EncodedStorm }>;
  probeRate: number;
  workers: number;
  partitions: number;
  workerConfig: ConfigObject;
  preload: boolean;
  timeoutMs: number;
  /** Where this checkout's workers write CPU profiles (`--profile`); never the baseline's. */
  profileDir?: string;
  /** V8 old-space cap of every worker, both builds alike (`--worker-heap-mb`). */
  workerHeapMb?: number;
  /** With `preload`, run once the storm is loaded and before the workers start (the bare loop). */
  afterPreload?: (topics: BenchTopics) => Promise<void>;
  /** Called with each resource the arm creates, so the run removes it even when the arm fails. */
  own(resource: { stop?: () => Promise<unknown>; remove?: () => Promise<unknown> }): void;
}

/**
 * The storm through one worker build: its own topics, database (migrated by that build), simulated
 * fleet and consumer group, on the shared broker and database server. Workers first and then the
 * storm as fast as the loader can send it (or, with `preload`, the other way round); then the outcome
 * checks, the latency probes at a steady rate, and the execution check.
 */
export async function runArm(ctx: ArmContext, spec: ArmSpec): Promise<ArmResult & { topics: BenchTopics; databaseUrl: string }> {
  const label = spec.build ? `${spec.build.ref} (${spec.build.commit.slice(0, 7)})` : 'this checkout';
  note(`── ${spec.name === 'baseline' ? 'baseline' : 'current'} worker: ${label}, topics ${spec.prefix}.*`);
  const databaseUrl = databaseUrlFor(ctx.endpoints.databaseUrl, spec.database);
  const groupId = `${spec.prefix}-workers`;
  const dir = join(ctx.dir, spec.name);
  mkdirSync(dir, { recursive: true });

  const topics = await createBenchTopics(ctx.admin, spec.prefix, ctx.partitions);
  ctx.own({ remove: () => deleteBenchTopics(ctx.admin, spec.prefix).catch((e: Error) => note(`could not delete ${spec.prefix} topics: ${e.message}`)) });
  const sim: SimProcess = await startSimProcess(ctx.fleet.spec, ctx.latencyScale, dir);
  ctx.own({ stop: () => sim.close() });
  const site = { kafkaBrokers: ctx.endpoints.kafkaBrokers, schemaRegistryUrl: ctx.endpoints.schemaRegistryUrl, databaseUrl, topicPrefix: spec.prefix, groupId, executorUrl: sim.url };
  const { configFile, env } = prepareWorkers(dir, site, ctx.workerConfig);

  ctx.own({ remove: () => dropDatabase(databaseUrl).catch((e: Error) => note(`could not drop ${databaseUrl}: ${e.message}`)) });
  if (spec.build) {
    // Its own migrations, by its own `arbiter migrate`: the baseline's schema, not ours.
    await migrateWithBin(spec.build.bin, spec.build.dir, configFile, env);
  } else {
    await ensureDatabase(databaseUrl);
    await migrate(databaseUrl);
  }
  const db = new pg.Pool({ connectionString: databaseUrl, max: 3, application_name: 'arbiter-bench' });
  ctx.own({ stop: () => db.end().catch(() => {}) });
  // The storm was encoded once; its schema id decodes anywhere. Register under this prefix's subjects too.
  const serde = new Serde(ctx.endpoints.schemaRegistryUrl, topicNames(spec.prefix));
  await serde.register();

  let workers: WorkerProcess[] = [];
  const stopWorkers = async () => {
    await Promise.all(workers.map((w) => w.stop().catch(() => null)));
    workers = [];
  };
  ctx.own({ stop: stopWorkers });
  const start = async () => {
    await checkpoint(db);
    note(`starting ${ctx.workers} worker processes (${label})`);
    // Ready within two minutes: on a busy 2-core machine, N workers joining one group take a while.
    workers = await startWorkers(
      ctx.workers,
      (i) => ({
        id: `${spec.prefix}-w${i + 1}`,
        configFile,
        env,
        ...(spec.build ? { bin: spec.build.bin } : {}),
        ...(ctx.profileDir && !spec.build ? { cpuProfileDir: ctx.profileDir } : {}),
        ...(ctx.workerHeapMb ? { heapMb: ctx.workerHeapMb } : {}),
      }),
      120_000,
    );
  };
  const { storm } = ctx;
  let loaded!: (at: number) => void;
  const lastRecordAt = new Promise<number>((resolve) => (loaded = resolve));
  const loadStorm = async (quiet: boolean) => {
    const result = await loadRecords(ctx.kafka, topics.requests, storm.count, (j) => stormMessage(storm, j), { label: 'load storm', quiet });
    loaded(Date.now());
    return result;
  };
  const decide = () =>
    runStorm({ db, admin: ctx.admin, workers, groupId, requestsTopic: topics.requests, outcomesTopic: topics.outcomes, total: storm.count, timeoutMs: ctx.timeoutMs, simPid: sim.pid, lastRecordAt });

  let load: LoadResult;
  let arbiter: StormResult;
  if (ctx.preload) {
    load = await loadStorm(false);
    note(`loaded ${load.records.toLocaleString()} records in ${load.seconds.toFixed(1)} s (${Math.round(load.recordsPerSecond).toLocaleString()} rec/s)`);
    await ctx.afterPreload?.(topics);
    await start();
    arbiter = await decide();
  } else {
    await start();
    [load, arbiter] = await Promise.all([loadStorm(true), decide()]);
    note(`loaded ${load.records.toLocaleString()} records in ${load.seconds.toFixed(1)} s (${Math.round(load.recordsPerSecond).toLocaleString()} rec/s), while the workers consumed`);
  }
  note(`${spec.name}: ${Math.round(arbiter.requestsPerSecond).toLocaleString()} requests/s over ${arbiter.seconds.toFixed(1)} s; lag back to 0 ${arbiter.lagZeroSeconds.toFixed(1)} s after the last record`);

  // Before the probes add their own outcomes: the storm's, as agents would read them.
  const outcomeTopic = await checkOutcomeTopic({ kafka: ctx.kafka, admin: ctx.admin, serde, topic: topics.outcomes, groupId: `${spec.prefix}-outcome-check`, timeoutMs: ctx.timeoutMs });
  const missingFinal = Math.max(arbiter.missingFinal, storm.count - outcomeTopic.requestsWithFinal);
  note(`outcomes topic: ${outcomeTopic.requestsWithFinal.toLocaleString()} of ${storm.count.toLocaleString()} requests with a final outcome, ${outcomeTopic.conflicting} conflicting; Postgres: ${arbiter.finalCount.toLocaleString()} final`);

  const probes: ProbeResult[] = [];
  for (const set of ctx.probeSets) {
    const probe = await runLatencyProbe({
      label: set.label,
      kafka: ctx.kafka,
      db,
      requestsTopic: topics.requests,
      outcomesTopic: topics.outcomes,
      groupPrefix: spec.prefix,
      records: set.records,
      ratePerSecond: ctx.probeRate,
      timeoutMs: 120_000,
      pidGroups: (benchBackends) => workerPidGroups(workers, sim.pid, benchBackends),
      workers,
    });
    note(`probe (${set.label}): p99 first decision ${probe.decisionLatencyMs.p99.toFixed(1)} ms at ${Math.round(probe.achievedRate)} requests/s`);
    probes.push(probe);
  }

  const expected = storm.distinctPods + (ctx.probeSets[0]?.records.distinctPods ?? 0);
  const executions = await checkExecutions(db, sim, expected);
  await stopWorkers();
  return {
    name: spec.name,
    label,
    commit: spec.build?.commit ?? null,
    prefix: spec.prefix,
    load,
    arbiter,
    outcomeTopic,
    missingFinal,
    probes,
    executions,
    cpu: cpuPerRequest(arbiter.cpu, storm.count),
    build: spec.build ?? null,
    topics,
    databaseUrl,
  };
}

/** Every request of the storm and of the probes has a final outcome, none two different ones. */
export function allFinal(arm: Pick<ArmResult, 'missingFinal' | 'outcomeTopic' | 'probes'>): boolean {
  return arm.missingFinal === 0 && arm.outcomeTopic.conflicting === 0 && arm.probes.every((p) => p.missingOutcomes === 0);
}
