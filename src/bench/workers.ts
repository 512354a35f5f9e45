import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './stats.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'arbiter.js');

import { freePort } from '../demo/index.ts';


/** A real `arbiter worker` process, spawned the way the integration tests spawn them. */
export interface WorkerProcess {
  id: string;
  pid: number;
  metricsUrl: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
  stop(): Promise<number | null>;
}

export interface SpawnWorkersOptions {
  count: number;
  configFile: string;
  env: NodeJS.ProcessEnv;
  idPrefix: string;
  /** Write a V8 CPU profile per worker into this directory on exit (`node --cpu-prof`). */
  cpuProfileDir?: string;
}

/** Spawns all workers at once (so they join the group together), then waits until each is ready. */
export async function spawnWorkers(options: SpawnWorkersOptions, readyTimeoutMs = 120_000): Promise<WorkerProcess[]> {
  const workers: WorkerProcess[] = [];
  for (let i = 0; i < options.count; i++) {
    const port = await freePort();
    const id = `${options.idPrefix}-w${i + 1}`;
    const nodeArgs = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`, `--cpu-prof-name=${id}.cpuprofile`] : [];
    const child = spawn(process.execPath, [...nodeArgs, BIN, 'worker', '--config', options.configFile], {
      cwd: ROOT,
      env: { ...options.env, ARBITER_WORKER_ID: id, ARBITER_METRICS_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    const keep = (d: Buffer) => (log = (log + d.toString()).slice(-20_000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    workers.push({
      id,
      pid: child.pid!,
      metricsUrl: `http://127.0.0.1:${port}`,
      child,
      exited,
      output: () => log,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      },
    });
  }
  const until = Date.now() + readyTimeoutMs;
  await Promise.all(
    workers.map(async (w) => {
      let gone = false;
      void w.exited.then(() => (gone = true));
      while (Date.now() < until) {
        if (gone) throw new Error(`worker ${w.id} exited during start-up:\n${w.output()}`);
        if (await fetch(`${w.metricsUrl}/readyz`).then((r) => r.ok, () => false)) return;
        await sleep(100);
      }
      throw new Error(`worker ${w.id} not ready within ${readyTimeoutMs} ms:\n${w.output()}`);
    }),
  );
  return workers;
}

export interface WorkerMetrics {
  /** Final decisions this worker has recorded (every status but ACCEPTED, DEFERRED, REROUTED). */
  finalDecisions: number;
  residentMb: number;
}

const PROGRESS_STATUSES = new Set(['ACCEPTED', 'DEFERRED', 'REROUTED']);

/** Scrapes the worker's /metrics: cheap enough to poll every second, unlike counting rows in Postgres. */
export async function scrapeWorker(worker: WorkerProcess): Promise<WorkerMetrics | null> {
  try {
    const text = await fetch(`${worker.metricsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text());
    let finalDecisions = 0;
    let residentMb = NaN;
    for (const line of text.split('\n')) {
      if (line.startsWith('arbiter_decisions_total{')) {
        const status = /status="([^"]+)"/.exec(line)?.[1] ?? '';
        if (!PROGRESS_STATUSES.has(status)) finalDecisions += Number(line.slice(line.lastIndexOf(' ') + 1));
      } else if (line.startsWith('arbiter_process_resident_memory_bytes ')) {
        residentMb = Number(line.slice(line.lastIndexOf(' ') + 1)) / 1024 / 1024;
      }
    }
    return { finalDecisions, residentMb };
  } catch {
    return null;
  }
}
