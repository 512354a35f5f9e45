import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Linux /proc readings; everything degrades to "unknown" elsewhere (the bench still runs). */

const CLOCK_TICKS = 100; // USER_HZ: 100 on every mainstream Linux build.

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Resident and peak resident memory of a process, in MiB (VmRSS / VmHWM). */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } | null {
  const status = read(`/proc/${pid}/status`);
  if (!status) return null;
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** user + system CPU seconds a process has used (all its threads). */
export function cpuSecondsOf(pid: number): { seconds: number; comm: string } | null {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return null;
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const fields = stat.slice(close + 2).split(' ');
  // Fields after the comm start at field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return { seconds: (utime + stime) / CLOCK_TICKS, comm };
}

export interface CpuSnapshot {
  at: number;
  /** CPU seconds per group of processes. */
  groups: Record<string, number>;
  /** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
  machineBusy: number;
  machineTotal: number;
}

export interface PidGroup {
  name: string;
  pids: number[];
}

/**
 * CPU used so far by each group: the given pids (workers, bare-loop processes, this process), then
 * every other process classified by name: Postgres backends, the Kafka broker, the registry.
 */
export function cpuSnapshot(groups: PidGroup[]): CpuSnapshot {
  const out: Record<string, number> = {};
  const claimed = new Map<number, string>();
  for (const g of groups) {
    out[g.name] ??= 0;
    for (const pid of g.pids) claimed.set(pid, g.name);
  }
  for (const name of ['postgres', 'kafka broker', 'schema registry', 'other processes']) out[name] ??= 0;
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    // Not Linux.
  }
  for (const entry of entries) {
    const pid = Number(entry);
    const cpu = cpuSecondsOf(pid);
    if (!cpu) continue;
    let group = claimed.get(pid);
    if (!group) {
      if (cpu.comm === 'postgres') group = 'postgres';
      else if (cpu.comm === 'java') {
        const cmdline = read(`/proc/${pid}/cmdline`) ?? '';
        group = cmdline.includes('kafka.Kafka') ? 'kafka broker' : cmdline.includes('quarkus') || cmdline.includes('registry') ? 'schema registry' : 'other processes';
      } else group = 'other processes';
    }
    out[group] = (out[group] ?? 0) + cpu.seconds;
  }
  const machine = (read('/proc/stat') ?? '').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const idle = (machine[3] ?? 0) + (machine[4] ?? 0);
  const total = machine.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  return { at: Date.now(), groups: out, machineBusy: (total - idle) / CLOCK_TICKS, machineTotal: total / CLOCK_TICKS };
}

export interface CpuUsage {
  wallSeconds: number;
  cores: number;
  /** Share of the machine's capacity that was busy, 0..1. */
  machineBusy: number;
  /** Core-seconds used by each group during the window. */
  coreSeconds: Record<string, number>;
}

/** The CPU used between two snapshots. Processes that exited in between are not counted. */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuUsage {
  const coreSeconds: Record<string, number> = {};
  for (const [name, seconds] of Object.entries(b.groups)) {
    const before = a.groups[name] ?? 0;
    coreSeconds[name] = Math.max(0, seconds - before);
  }
  const total = b.machineTotal - a.machineTotal;
  return {
    wallSeconds: (b.at - a.at) / 1000,
    cores: cpus().length,
    machineBusy: total > 0 ? (b.machineBusy - a.machineBusy) / total : NaN,
    coreSeconds,
  };
}
