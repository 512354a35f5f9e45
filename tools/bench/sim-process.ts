import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FleetSpec } from '../fleet/index.ts';
import { ARBITER_BIN, launchNode } from '../support/index.ts';

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
  const sim = launchNode({
    label: 'arbiter sim',
    args: [ARBITER_BIN, 'sim', '--port', '0', '--fleet', fleetFile, '--latency-scale', String(latencyScale)],
  });
  let url: string;
  try {
    url = (await sim.waitForOutput(/listening on (http:\/\/\S+)/, 60_000))[1]!;
  } catch (error) {
    await sim.stop('SIGKILL');
    throw error;
  }
  const get = async <T>(path: string): Promise<T> => (await fetch(`${url}${path}`).then((r) => r.json())) as T;
  return {
    url,
    pid: sim.pid,
    stats: () => get<{ total: number }>('/stats'),
    violations: async () => (await get<{ counts: Record<string, number> }>('/violations')).counts,
    async close() {
      await sim.stop();
    },
  };
}
