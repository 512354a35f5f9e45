import type { CpuUsage } from './proc.ts';

/** Names the report gives the process groups (proc.ts names them by what they are, not by role). */
const GROUP_LABELS: Record<string, string> = {
  'bench process': 'load generator (bench process)',
};

export const UNATTRIBUTED = 'unattributed (exited processes, kernel)';
const OTHER = 'other processes';

export interface CpuShare {
  group: string;
  coreSeconds: number;
  usPerRequest: number;
}

export interface CpuPerRequest {
  requests: number;
  /** Largest first; includes "unattributed" (busy time of the machine not found in a live process). */
  groups: CpuShare[];
  /** The whole machine's busy time per request. */
  totalUs: number;
  /** The same without "other processes" (other people's work on the shared machine). */
  totalWithoutOthersUs: number;
}

/** CPU microseconds per request of each process group, and of everything together, during one phase. */
export function cpuPerRequest(cpu: CpuUsage, requests: number): CpuPerRequest {
  const per = (seconds: number) => (requests > 0 ? (seconds * 1e6) / requests : NaN);
  const groups: CpuShare[] = Object.entries(cpu.coreSeconds).map(([name, seconds]) => ({ group: GROUP_LABELS[name] ?? name, coreSeconds: seconds, usPerRequest: per(seconds) }));
  const attributed = groups.reduce((sum, g) => sum + g.coreSeconds, 0);
  const busy = cpu.machineBusy * cpu.cores * cpu.wallSeconds;
  const total = Number.isFinite(busy) ? Math.max(busy, attributed) : attributed;
  if (total - attributed > 0) groups.push({ group: UNATTRIBUTED, coreSeconds: total - attributed, usPerRequest: per(total - attributed) });
  groups.sort((a, b) => b.coreSeconds - a.coreSeconds);
  const others = cpu.coreSeconds[OTHER] ?? 0;
  return { requests, groups, totalUs: per(total), totalWithoutOthersUs: per(total - others) };
}

/** µs per request of one group, or NaN when it is not in the phase. */
export function groupUs(cpu: CpuPerRequest, group: string): number {
  return cpu.groups.find((g) => g.group === group)?.usPerRequest ?? NaN;
}

/** new / baseline, or null when either is missing, not finite, or the baseline is zero. */
export function ratio(value: number | null | undefined, base: number | null | undefined): number | null {
  if (value === null || value === undefined || base === null || base === undefined) return null;
  if (!Number.isFinite(value) || !Number.isFinite(base) || base === 0) return null;
  return value / base;
}

/** One row of the before/after table: the figure for each side and their ratio. */
export interface ComparisonRow {
  measure: string;
  baseline: number | null;
  current: number | null;
  /** current / baseline. */
  ratio: number | null;
  /** Which direction is better, for the reader. */
  better: 'higher' | 'lower';
}

export function comparisonRow(measure: string, baseline: number | null | undefined, current: number | null | undefined, better: 'higher' | 'lower'): ComparisonRow {
  const finite = (n: number | null | undefined) => (n === null || n === undefined || !Number.isFinite(n) ? null : n);
  return { measure, baseline: finite(baseline), current: finite(current), ratio: ratio(current, baseline), better };
}
