import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchNode, type NodeChild } from './child-process.ts';
import { loadConfig, type ArbiterConfig } from '../../src/config/index.ts';
import { WORKER_MALLOC_ENV, WORKER_SEMI_SPACE_FLAG, semiSpaceFlagGiven } from '../../src/worker/index.ts';
import type { ConfigObject } from './merge-config.ts';
import { ARBITER_BIN } from './paths.ts';

/** A free TCP port on loopback (for a worker's metrics endpoint). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

/** Where a private Arbiter lives: what its worker processes are told through the environment. */
export interface WorkerSite {
  kafkaBrokers: string | string[];
  schemaRegistryUrl: string;
  databaseUrl: string;
  topicPrefix: string;
  groupId: string;
  executorUrl: string;
  /** The key the workers sign executor calls with (ARBITER_EXECUTOR_HMAC_KEY); none: unsigned. */
  executorHmacKey?: string;
}

/** The environment of `arbiter worker` children (the race lab, the benchmark and the tests start them alike). */
export function workerEnv(site: WorkerSite): NodeJS.ProcessEnv {
  return {
    // As the image starts a worker (src/worker/allocator.ts); a value given to the tool wins.
    ...WORKER_MALLOC_ENV,
    ...process.env,
    KAFKA_BROKERS: Array.isArray(site.kafkaBrokers) ? site.kafkaBrokers.join(',') : site.kafkaBrokers,
    SCHEMA_REGISTRY_URL: site.schemaRegistryUrl,
    DATABASE_URL: site.databaseUrl,
    ARBITER_TOPIC_PREFIX: site.topicPrefix,
    ARBITER_GROUP_ID: site.groupId,
    ARBITER_EXECUTOR_URL: site.executorUrl,
    ...(site.executorHmacKey ? { ARBITER_EXECUTOR_HMAC_KEY: site.executorHmacKey } : {}),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
}

/**
 * The semi-space flag a worker started with `env` runs with: the image's
 * (src/worker/young-generation.ts), unless NODE_OPTIONS in `env` already gives one, which reaches
 * the worker and wins. The bench reports what this says.
 */
export function workerSemiSpace(env: NodeJS.ProcessEnv): { flag: string; fromImage: boolean } {
  const own = semiSpaceFlagGiven([], env);
  return own ? { flag: own, fromImage: false } : { flag: WORKER_SEMI_SPACE_FLAG, fromImage: true };
}

/** Node's flags for a worker started with `env`, as the image starts one: see workerSemiSpace. */
export function workerNodeFlags(env: NodeJS.ProcessEnv): string[] {
  const semiSpace = workerSemiSpace(env);
  return semiSpace.fromImage ? [semiSpace.flag] : [];
}

/** What every worker of one site is started with. */
export interface WorkerSetup {
  configFile: string;
  env: NodeJS.ProcessEnv;
  /** The configuration the workers will load, as they will load it. */
  config: Readonly<ArbiterConfig>;
}

/**
 * Writes the workers' config file into `dir` and builds their environment. The config is loaded
 * here once, so a mistake fails in the caller, named, instead of in N children.
 */
export function prepareWorkers(dir: string, site: WorkerSite, config: ConfigObject): WorkerSetup {
  const configFile = join(dir, 'worker-config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const env = workerEnv(site);
  return { configFile, env, config: loadConfig({ file: configFile, env }) };
}

/** A real `arbiter worker` process. */
export interface WorkerProcess extends NodeChild {
  readonly id: string;
  /** Its /metrics, /healthz and /readyz. */
  readonly metricsUrl: string;
  /** Resolves once /readyz answers 200; rejects if the worker exits first or time runs out. */
  waitReady(timeoutMs?: number): Promise<void>;
}

export interface WorkerLaunch {
  id: string;
  configFile: string;
  env: NodeJS.ProcessEnv;
  /** Write a V8 CPU profile into this directory when the worker exits (`node --cpu-prof`). */
  cpuProfileDir?: string;
  /** Caps the worker's V8 old space (`node --max-old-space-size`), as a container's memory limit would. */
  heapMb?: number;
  /** `worker` (the default) or `relay` (the plan relay alone). */
  command?: 'worker' | 'relay';
  /** Another checkout's bin/arbiter.js (the benchmark's baseline build); it runs in that checkout. Default: this one. */
  bin?: string;
}

/**
 * Starts `arbiter worker` through bin/arbiter.js, as it runs in production: tests kill them with
 * SIGKILL, the race lab and the benchmark run several of them as one consumer group.
 */
export async function spawnWorker(launch: WorkerLaunch): Promise<WorkerProcess> {
  const port = await freePort();
  const profile = launch.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${launch.cpuProfileDir}`, `--cpu-prof-name=${launch.id}.cpuprofile`] : [];
  const node = launchNode({
    label: `${launch.command ?? 'worker'} ${launch.id}`,
    args: [...profile, ...workerNodeFlags(launch.env), ...(launch.heapMb ? [`--max-old-space-size=${launch.heapMb}`] : []), launch.bin ?? ARBITER_BIN, launch.command ?? 'worker', '--config', launch.configFile],
    ...(launch.bin ? { cwd: dirname(dirname(launch.bin)) } : {}),
    env: { ...launch.env, ARBITER_WORKER_ID: launch.id, ARBITER_METRICS_PORT: String(port) },
  });
  const metricsUrl = `http://127.0.0.1:${port}`;
  return Object.assign(node, {
    id: launch.id,
    metricsUrl,
    async waitReady(timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        if (!node.running()) throw new Error(`worker ${launch.id} exited during start-up:\n${node.output()}`);
        const ready = await fetch(`${metricsUrl}/readyz`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false);
        if (ready) return;
        await sleep(100);
      }
      throw new Error(`worker ${launch.id} not ready within ${timeoutMs} ms:\n${node.output()}`);
    },
  });
}

/**
 * Starts `count` workers at once, so they join the consumer group together, and waits until each
 * is ready. If one fails, the others are killed: they would otherwise keep the caller alive.
 */
export async function startWorkers(count: number, launch: (index: number) => WorkerLaunch, readyTimeoutMs = 60_000): Promise<WorkerProcess[]> {
  const workers = await Promise.all(Array.from({ length: count }, (_, i) => spawnWorker(launch(i))));
  try {
    await Promise.all(workers.map((w) => w.waitReady(readyTimeoutMs)));
  } catch (error) {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    throw error;
  }
  return workers;
}
