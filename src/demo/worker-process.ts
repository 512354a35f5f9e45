import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/arbiter.js', import.meta.url));

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
}

/** The environment of `arbiter worker` children (the demo, the benchmark and the tests start them alike). */
export function workerEnv(site: WorkerSite): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KAFKA_BROKERS: Array.isArray(site.kafkaBrokers) ? site.kafkaBrokers.join(',') : site.kafkaBrokers,
    SCHEMA_REGISTRY_URL: site.schemaRegistryUrl,
    DATABASE_URL: site.databaseUrl,
    ARBITER_TOPIC_PREFIX: site.topicPrefix,
    ARBITER_GROUP_ID: site.groupId,
    ARBITER_EXECUTOR_URL: site.executorUrl,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
}

export interface WorkerProcess {
  id: string;
  child: ChildProcess;
  metricsUrl: string;
  exited: Promise<number | null>;
  /** The last 20 kB the worker wrote, for error messages. */
  output(): string;
  waitReady(timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `arbiter worker` as a separate process, as it runs in production: tests kill them with
 * SIGKILL, the demo and the benchmark run several of them as one consumer group.
 */
export async function spawnWorker(options: { id: string; configFile: string; env: NodeJS.ProcessEnv }): Promise<WorkerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'worker', '--config', options.configFile], {
    cwd: ROOT,
    env: { ...options.env, ARBITER_WORKER_ID: options.id, ARBITER_METRICS_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk: Buffer) => (log = (log + chunk.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let hasExited = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      hasExited = true;
      resolve(code);
    }),
  );
  const metricsUrl = `http://127.0.0.1:${port}`;
  return {
    id: options.id,
    child,
    metricsUrl,
    exited,
    output: () => log,
    async waitReady(timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        if (hasExited) throw new Error(`worker ${options.id} exited during start-up:\n${log}`);
        if (await fetch(`${metricsUrl}/readyz`).then((r) => r.ok, () => false)) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`worker ${options.id} not ready within ${timeoutMs} ms:\n${log}`);
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!hasExited) child.kill(signal);
      return exited;
    },
  };
}
