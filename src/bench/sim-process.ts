import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FleetSpec } from '../executor/index.ts';
import { BIN, ROOT } from './workers.ts';

/** The simulated fleet as its own process (`arbiter sim`), as a real executor would be: nothing the bench does slows it down. */
export interface SimProcess {
  url: string;
  pid: number;
  stats(): Promise<{ total: number }>;
  violations(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export async function startSimProcess(spec: FleetSpec, latencyScale: number, dir: string): Promise<SimProcess> {
  const fleetFile = join(dir, 'fleet.json');
  writeFileSync(fleetFile, JSON.stringify(spec));
  const child: ChildProcess = spawn(process.execPath, [BIN, 'sim', '--port', '0', '--fleet', fleetFile, '--latency-scale', String(latencyScale)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`arbiter sim did not start within 60 s:\n${output}`)), 60_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      const found = /listening on (http:\/\/\S+)/.exec(output);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`arbiter sim exited during start-up:\n${output}`));
    });
  });
  const get = async <T>(path: string): Promise<T> => (await fetch(`${url}${path}`).then((r) => r.json())) as T;
  return {
    url,
    pid: child.pid!,
    stats: () => get<{ total: number }>('/stats'),
    violations: async () => (await get<{ counts: Record<string, number> }>('/violations')).counts,
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
