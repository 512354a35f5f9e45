import { spawn, type ChildProcess } from 'node:child_process';
import type { Admin } from 'kafkajs';
import { groupLag } from './kafka.ts';
import { memoryOf, cpuBetween, cpuSnapshot, type CpuUsage } from './proc.ts';
import { progressBar } from './progress.ts';
import { sleep } from './stats.ts';
import { ROOT } from './workers.ts';

const MAIN = new URL('./bare-loop-main.ts', import.meta.url).pathname;

export interface BareLoopOptions {
  admin: Admin;
  brokers: string[];
  topic: string;
  outTopic: string;
  groupId: string;
  processes: number;
  partitionsConsumedConcurrently: number;
  /** Records per produce call, as the worker's intake chunk. */
  chunk: number;
  total: number;
  timeoutMs: number;
}

export interface BareLoopResult {
  processes: number;
  records: number;
  seconds: number;
  recordsPerSecond: number;
  peakRssMb: number[];
  cpu: CpuUsage;
}

interface Child {
  child: ChildProcess;
  lines: string[];
  exited: Promise<void>;
}

/**
 * The ceiling: N processes of a bare kafkajs consume→produce loop over the same records, in a consumer
 * group of their own. Throughput is measured like Arbiter's: first record taken to last record done.
 */
export async function runBareLoop(options: BareLoopOptions): Promise<BareLoopResult> {
  const children: Child[] = [];
  for (let i = 0; i < options.processes; i++) {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      cwd: ROOT,
      env: {
        ...process.env,
        ARBITER_BENCH_BARE_LOOP: JSON.stringify({
          id: String(i + 1),
          brokers: options.brokers,
          groupId: options.groupId,
          topic: options.topic,
          outTopic: options.outTopic,
          partitionsConsumedConcurrently: options.partitionsConsumedConcurrently,
          chunk: options.chunk,
        }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      lines.push(...parts.filter(Boolean));
    });
    let errors = '';
    child.stderr!.on('data', (d: Buffer) => (errors = (errors + d.toString()).slice(-5_000)));
    const exited = new Promise<void>((resolve) =>
      child.once('exit', (code) => {
        if (buffer) lines.push(buffer);
        if (code) lines.push(JSON.stringify({ error: `exited ${code}: ${errors}` }));
        resolve();
      }),
    );
    children.push({ child, lines, exited });
  }
  const pids = children.map((c) => c.child.pid!);
  const before = cpuSnapshot([{ name: 'bare loop', pids }, { name: 'bench process', pids: [process.pid] }]);
  const bar = progressBar('bare loop', options.total);
  const peak = new Map<number, number>();
  const until = Date.now() + options.timeoutMs;
  try {
    for (;;) {
      const { committed, lag } = await groupLag(options.admin, options.groupId, options.topic);
      bar.update(committed);
      for (const pid of pids) {
        const m = memoryOf(pid);
        if (m) peak.set(pid, Math.max(peak.get(pid) ?? 0, m.peakMb));
      }
      if (committed >= options.total && lag === 0) break;
      const failed = children.find((c) => c.lines.some((l) => l.includes('"error"')));
      if (failed) throw new Error(`bare loop process failed: ${failed.lines.join('\n')}`);
      if (Date.now() > until) throw new Error(`bare loop did not finish within ${options.timeoutMs / 1000} s (committed ${committed}/${options.total})`);
      await sleep(250);
    }
  } finally {
    bar.stop();
  }
  const after = cpuSnapshot([{ name: 'bare loop', pids }, { name: 'bench process', pids: [process.pid] }]);
  for (const c of children) c.child.kill('SIGTERM');
  await Promise.all(children.map((c) => c.exited));
  const reports = children.flatMap((c) =>
    c.lines.flatMap((l) => {
      const parsed = JSON.parse(l) as { firstAt?: number; lastAt?: number; consumed?: number };
      return parsed.consumed !== undefined ? [parsed] : [];
    }),
  );
  const firstAt = Math.min(...reports.filter((r) => r.firstAt).map((r) => r.firstAt!));
  const lastAt = Math.max(...reports.map((r) => r.lastAt ?? 0));
  const records = reports.reduce((s, r) => s + (r.consumed ?? 0), 0);
  const seconds = (lastAt - firstAt) / 1000;
  return {
    processes: options.processes,
    records,
    seconds,
    recordsPerSecond: options.total / seconds,
    peakRssMb: [...peak.values()],
    cpu: cpuBetween(before, after),
  };
}
