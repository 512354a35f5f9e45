import type { Admin } from 'kafkajs';
import type { Logger } from '../logging/index.ts';
import type { Metrics } from './metrics.ts';

/** Offsets of one partition, as numbers (kafkajs gives strings; -1 is "none"). */
export interface PartitionOffsets {
  /** The next offset to be written (high watermark). */
  high: number;
  /** The earliest offset still on the broker. */
  low: number;
  /** The group's committed offset (the next one to process), -1 when nothing was committed. */
  committed: number;
  /** The next offset after the last record this worker processed, when it has processed any. */
  processed?: number;
}

/**
 * Records not yet processed: the high watermark minus the position, the further of what the
 * group committed and what this worker processed since; with neither, the whole partition counts
 * from its earliest offset (the group starts at the beginning).
 */
export function consumerLag(o: PartitionOffsets): number {
  const position = Math.max(o.committed, o.processed ?? -1);
  return Math.max(0, o.high - (position >= 0 ? Math.max(position, o.low) : o.low));
}

export interface LagMonitorOptions {
  admin: Admin;
  groupId: string;
  topic: string;
  intervalMs: number;
  metrics: Metrics;
  log: Logger;
}

/**
 * `arbiter_consumer_lag{partition}` for the partitions this worker owns, read from the broker
 * (high watermarks, the group's committed offsets) every `intervalMs` — whether or not records
 * arrive — and updated at once when a batch is processed. A revoked partition's series is removed.
 */
export class LagMonitor {
  private owned = new Set<number>();
  private readonly processed = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private connected = false;
  private stopped = false;
  private failures = 0;

  constructor(private readonly options: LagMonitorOptions) {}

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    if (this.connected) await this.options.admin.disconnect();
    this.connected = false;
  }

  /** The partitions this worker owns now; the others' series go. */
  assigned(partitions: Iterable<number>): void {
    const owned = new Set(partitions);
    for (const p of this.owned) {
      if (owned.has(p)) continue;
      this.processed.delete(p);
      this.options.metrics.consumerLag.remove({ partition: String(p) });
    }
    this.owned = owned;
  }

  /** A batch was processed up to `lastOffset`: the lag is known at once from the batch's high watermark. */
  batchProcessed(partition: number, highWatermark: string, lastOffset: string): void {
    const next = Number(lastOffset) + 1;
    this.processed.set(partition, Math.max(next, this.processed.get(partition) ?? -1));
    if (this.owned.has(partition)) {
      this.options.metrics.consumerLag.set({ partition: String(partition) }, Math.max(0, Number(highWatermark) - next));
    }
  }

  /** Reads the broker's offsets and sets the gauge of every owned partition. Exposed for tests. */
  async refresh(): Promise<void> {
    const { admin, groupId, topic, metrics } = this.options;
    if (this.owned.size === 0) return;
    if (!this.connected) {
      await admin.connect();
      this.connected = true;
    }
    const [ends, groups] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
    const committed = new Map((groups.find((g) => g.topic === topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    for (const end of ends) {
      if (!this.owned.has(end.partition)) continue;
      const lag = consumerLag({
        high: Number(end.high),
        low: Number(end.low),
        committed: committed.get(end.partition) ?? -1,
        processed: this.processed.get(end.partition),
      });
      metrics.consumerLag.set({ partition: String(end.partition) }, lag);
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.refresh()
        .then(() => {
          this.failures = 0;
        })
        .catch((error: unknown) => {
          if (this.failures++ % 30 === 0) this.options.log.warn({ err: error }, 'consumer lag: reading offsets from the broker failed; will try again');
        })
        .finally(() => {
          this.running = null;
          this.schedule(this.options.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }
}
