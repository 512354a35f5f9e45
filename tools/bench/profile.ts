import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The parts of a V8 .cpuprofile (what `node --cpu-prof` writes) that a self-time summary needs. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  /** Share of the profiled non-idle time, 0..1. */
  share: number;
  ms: number;
}

export interface ProfileSummary {
  files: string[];
  /** Non-idle sampled time, ms. */
  busyMs: number;
  idleMs: number;
  /** Self time grouped by where the code lives (package, or src/<folder>). */
  byArea: ProfileEntry[];
  /** The hottest functions by self time. */
  topFunctions: ProfileEntry[];
  /** Inclusive time of selected functions of the hot path (self + everything they call). */
  inclusive: ProfileEntry[];
}

/** Where a frame's code lives: a package, a folder of Arbiter's src, or the runtime itself. */
export function areaOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'V8/native (program)';
    // Named frames without a script are natives (writev) or code compiled at run time (avsc's generated readers).
    return `no script: ${functionName || '(anonymous)'}`;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) {
    // pg-protocol, pg-pool and pg-types belong with pg.
    const name = pkg[1]!;
    return name.startsWith('pg') ? 'pg (node-postgres)' : name;
  }
  const src = /\/src\/([^/]+)\//.exec(url);
  if (src) return `arbiter src/${src[1]}`;
  if (url.startsWith('node:')) return 'node core';
  return 'other';
}

/** Functions whose inclusive time tells the story; async frames count their synchronous segments only. */
const INCLUSIVE_OF = [
  'schemaFromConfluentSchema',
  'createResolver',
  'equals',
  'fromBuffer',
  'toBuffer',
  'takeBatch',
  'decideArrival',
  'runPending',
  'insertStates',
  'insertRequests',
  'insertDecisions',
  'coalesceKey',
  'tryParseArn',
];

/** Summarises every .cpuprofile in a directory (one per worker) into one picture. */
export function summarizeProfiles(dir: string, top = 25): ProfileSummary {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busyMs = 0;
  let idleMs = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const selfMs = new Map<number, number>();
    profile.samples.forEach((id, i) => selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
    for (const [id, ms] of selfMs) {
      const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
      const area = areaOf(url, functionName);
      if (area === 'idle') {
        idleMs += ms;
        continue;
      }
      busyMs += ms;
      areas.set(area, (areas.get(area) ?? 0) + ms);
      const where = url ? `${url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${lineNumber + 1}` : '';
      const name = `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
      self.set(name, (self.get(name) ?? 0) + ms);
      // Inclusive time: charge each watched function once per sample, however deep the recursion.
      const seen = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const fn = byId.get(at)!.callFrame.functionName;
        if (INCLUSIVE_OF.includes(fn) && !seen.has(fn)) {
          seen.add(fn);
          inclusive.set(fn, (inclusive.get(fn) ?? 0) + ms);
        }
      }
    }
  }
  const entries = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => ({ name, ms, share: busyMs > 0 ? ms / busyMs : 0 }));
  return { files, busyMs, idleMs, byArea: entries(areas, 20), topFunctions: entries(self, top), inclusive: entries(inclusive, INCLUSIVE_OF.length) };
}
