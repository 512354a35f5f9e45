import type { Admin } from 'kafkajs';
import { launchNode, nodeScript, siblingModule, type NodeChild } from '../support/index.ts';
import { groupLag } from './kafka.ts';
import { memoryOf, cpuBetween, cpuSnapshot, type CpuUsage } from './proc.ts';
import { progressBar } from './progress.ts';
import { sleep } from './stats.ts';

const MAIN = siblingModule(import.meta.url, 'bare-loop-main');

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

/**
 * The ceiling: N processes of a bare kafkajs consume→produce loop over the same records, in a consumer
 * group of their own. Throughput is measured like Arbiter's: first record taken to last record done.
 */
export async function runBareLoop(options: BareLoopOptions): Promise<BareLoopResult> {
  const children: NodeChild[] = [];
  for (let i = 0; i < options.processes; i++) {
    children.push(
      launchNode({
        label: `bare loop process ${i + 1}`,
        args: nodeScript(MAIN),
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
      }),
    );
  }
  const pids = children.map((c) => c.pid);
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
      // They run until told to stop: one that is gone has failed.
      const failed = children.find((c) => !c.running());
      if (failed) throw new Error(`bare loop process ${failed.pid} exited early:\n${failed.output()}`);
      if (Date.now() > until) throw new Error(`bare loop did not finish within ${options.timeoutMs / 1000} s (committed ${committed}/${options.total})`);
      await sleep(250);
    }
  } catch (error) {
    await Promise.all(children.map((c) => c.stop('SIGKILL')));
    throw error;
  } finally {
    bar.stop();
  }
  const after = cpuSnapshot([{ name: 'bare loop', pids }, { name: 'bench process', pids: [process.pid] }]);
  await Promise.all(children.map((c) => c.stop()));
  // Each prints one JSON line with its counts as it exits (bare-loop-main.ts).
  const reports = children.flatMap((c) =>
    c.output().split('\n').flatMap((line) => {
      if (!line.startsWith('{')) return [];
      const parsed = JSON.parse(line) as { firstAt?: number; lastAt?: number; consumed?: number };
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
    // What the loop consumed between its first and last record: the topic may hold more than the
    // storm (the latency probes' records, when it runs after them).
    recordsPerSecond: records / seconds,
    peakRssMb: [...peak.values()],
    cpu: cpuBetween(before, after),
  };
}
