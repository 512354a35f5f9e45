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

/** One process as /proc/<pid>/stat tells it. */
export interface ProcessCpu {
  pid: number;
  /** When it started (clock ticks after boot): a pid reused by another process is another process. */
  startTicks: number;
  comm: string;
  /** user + system CPU seconds it has used (all its threads). */
  seconds: number;
  /** user + system CPU seconds of its children that exited and that it reaped (cutime + cstime). */
  reapedChildrenSeconds: number;
}

function processCpu(pid: number): ProcessCpu | null {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return null;
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const fields = stat.slice(close + 2).split(' ');
  // Fields after the comm start at field 3 (state): utime, stime, cutime, cstime are fields 14-17,
  // starttime field 22.
  const field = (n: number) => Number(fields[n - 3]);
  return { pid, startTicks: field(22), comm, seconds: (field(14) + field(15)) / CLOCK_TICKS, reapedChildrenSeconds: (field(16) + field(17)) / CLOCK_TICKS };
}

/** user + system CPU seconds a process has used (all its threads). */
export function cpuSecondsOf(pid: number): { seconds: number; comm: string } | null {
  const cpu = processCpu(pid);
  return cpu && { seconds: cpu.seconds, comm: cpu.comm };
}

/** A process in a snapshot: its CPU so far and the group it counts for. */
interface GroupedProcess {
  group: string;
  comm: string;
  seconds: number;
  reapedChildrenSeconds: number;
}

export interface CpuSnapshot {
  at: number;
  /** Every process, by `pid:startTicks`. */
  processes: Map<string, GroupedProcess>;
  /** The groups reported, processes in them or not (the given ones and NAMED_GROUPS). */
  groupNames: string[];
  /** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
  machineBusy: number;
  machineTotal: number;
}

export interface PidGroup {
  name: string;
  pids: number[];
}

/** The groups every snapshot reports, given pids or not. */
const NAMED_GROUPS = ['postgres', 'kafka broker', 'schema registry', 'other processes'];

/**
 * The group whose exited processes are reaped by a process of the group itself: PostgreSQL's
 * backends, autovacuum and parallel workers are children of its postmaster. A pool closing an
 * idle connection, or an autovacuum worker, ends a process during a window; its CPU then moves
 * into the postmaster's reaped-children time, where the window still sees it.
 */
const SELF_REAPING_GROUP = 'postgres';
/** The processes the postmaster reaps, whatever group they count for (the bench's own backend too). */
const REAPED_BY_POSTMASTER = 'postgres';

/** Every process on the machine now (none when /proc cannot be read). */
export function readProcesses(): ProcessCpu[] {
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    // Not Linux.
  }
  return entries.map((e) => processCpu(Number(e))).filter((p): p is ProcessCpu => p !== null);
}

function groupOf(process: ProcessCpu, claimed: ReadonlyMap<number, string>): string {
  const given = claimed.get(process.pid);
  if (given) return given;
  if (process.comm === 'postgres') return 'postgres';
  if (process.comm === 'java') {
    const cmdline = read(`/proc/${process.pid}/cmdline`) ?? '';
    return cmdline.includes('kafka.Kafka') ? 'kafka broker' : cmdline.includes('quarkus') || cmdline.includes('registry') ? 'schema registry' : 'other processes';
  }
  return 'other processes';
}

/**
 * Every process and the group it counts for: the given pids (workers, bare-loop processes, this
 * process), then every other process classified by name: Postgres backends, the Kafka broker, the registry.
 */
export function cpuSnapshot(groups: PidGroup[], processes: readonly ProcessCpu[] = readProcesses(), classify = groupOf): CpuSnapshot {
  const claimed = new Map<number, string>();
  for (const g of groups) for (const pid of g.pids) claimed.set(pid, g.name);
  const byKey = new Map<string, GroupedProcess>();
  for (const p of processes) byKey.set(`${p.pid}:${p.startTicks}`, { group: classify(p, claimed), comm: p.comm, seconds: p.seconds, reapedChildrenSeconds: p.reapedChildrenSeconds });
  const machine = (read('/proc/stat') ?? '').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const idle = (machine[3] ?? 0) + (machine[4] ?? 0);
  const total = machine.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  return { at: Date.now(), processes: byKey, groupNames: [...groups.map((g) => g.name), ...NAMED_GROUPS], machineBusy: (total - idle) / CLOCK_TICKS, machineTotal: total / CLOCK_TICKS };
}

export interface CpuUsage {
  wallSeconds: number;
  cores: number;
  /** Share of the machine's capacity that was busy, 0..1. */
  machineBusy: number;
  /** Core-seconds used by each group during the window. */
  coreSeconds: Record<string, number>;
}

/**
 * The CPU each group used between two snapshots, process by process: one started in between counts
 * whole. One that exited in between took its CPU since the first snapshot with it, unless its parent
 * reaped it inside the group (PostgreSQL: SELF_REAPING_GROUP): then its whole life shows in the
 * parent's reaped-children time, less what the first snapshot had seen of it. (Summing the groups'
 * totals instead made every exit subtract the process's whole past: a probe's PostgreSQL CPU read 0
 * once a pool closed an idle connection that had served the storm.)
 */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuUsage {
  // Groups with no process still appear, as 0.
  const coreSeconds: Record<string, number> = Object.fromEntries([...a.groupNames, ...b.groupNames].map((name) => [name, 0]));
  for (const [key, after] of b.processes) {
    const before = a.processes.get(key);
    let used = after.seconds - (before?.seconds ?? 0);
    if (after.group === SELF_REAPING_GROUP) used += after.reapedChildrenSeconds - (before?.reapedChildrenSeconds ?? 0);
    coreSeconds[after.group] = (coreSeconds[after.group] ?? 0) + used;
  }
  for (const [key, before] of a.processes) {
    // Its whole life reappears in the postmaster's reaped-children time: take off what was seen of it.
    if (before.comm === REAPED_BY_POSTMASTER && !b.processes.has(key)) coreSeconds[SELF_REAPING_GROUP] = (coreSeconds[SELF_REAPING_GROUP] ?? 0) - before.seconds;
  }
  for (const name of Object.keys(coreSeconds)) coreSeconds[name] = Math.max(0, coreSeconds[name]!);
  const total = b.machineTotal - a.machineTotal;
  return {
    wallSeconds: (b.at - a.at) / 1000,
    cores: cpus().length,
    machineBusy: total > 0 ? (b.machineBusy - a.machineBusy) / total : NaN,
    coreSeconds,
  };
}
