import type { KafkaMessage } from 'kafkajs';

/** Records per intake chunk: small enough to heartbeat between, large enough to amortise a statement. */
export const INTAKE_CHUNK = 1_000;
/** Records fetched but not yet decided, per partition: beyond this the fetch loop waits. */
const MAX_QUEUED = 2_000;

export interface PipelineSteps {
  /** Decides one chunk and makes it durable; resolves with the delivery of its answers. */
  take(messages: KafkaMessage[]): Promise<{ delivered: Promise<void> }>;
  /** The chunk ending at `lastOffset` is durable; its offset may be committed once `delivered`. */
  durable(lastOffset: string, delivered: Promise<void>, highWatermark: string): Promise<void>;
  /** A chunk failed for good: nothing after `firstOffset` was decided; fetch again from it. */
  failed(firstOffset: string, error: unknown): void;
  /** The partition is closed (revoked, or the worker drains): decide nothing more. */
  closed(): boolean;
}

/**
 * The intake of one partition, apart from kafkajs' fetch loop. kafkajs fetches again only once
 * every batch of its last fetch has been handled; handling a batch to the end (decide, write,
 * deliver) made a record wait for the round trips of the records fetched before it. Here a batch
 * is queued and the fetch loop moves on; the partition's chunks are decided strictly one after
 * another (a chunk is decided against the memory its predecessor's durable decisions made), each
 * as soon as its predecessor is durable.
 */
export class PartitionPipeline {
  private queue: Array<{ message: KafkaMessage; highWatermark: string }> = [];
  private running: Promise<void> | null = null;
  private room: Array<() => void> = [];
  private stopped = false;

  constructor(private readonly steps: PipelineSteps) {}

  /** Queues a batch's records; resolves once the queue has room again (backpressure on the fetch loop). */
  async push(messages: KafkaMessage[], highWatermark: string): Promise<void> {
    if (this.stopped) return;
    for (const message of messages) this.queue.push({ message, highWatermark });
    this.running ??= this.run();
    while (this.queue.length > MAX_QUEUED && !this.stopped) await new Promise<void>((resolve) => this.room.push(resolve));
  }

  /** Resolves when everything queued so far has been decided (or dropped). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Whether the pipeline gave up (a chunk failed): the worker fetches again from that chunk. */
  get broken(): boolean {
    return this.stopped;
  }

  /**
   * Takes whatever is queued, up to a chunk, as one chunk: at low load a record is decided as soon
   * as it is fetched, under load the records that arrived during a write go together in the next.
   */
  private async run(): Promise<void> {
    try {
      while (this.queue.length && !this.stopped) {
        const taken = this.queue.splice(0, INTAKE_CHUNK);
        this.wake();
        if (this.steps.closed()) {
          this.queue = [];
          break;
        }
        const chunk = taken.map((t) => t.message);
        try {
          const { delivered } = await this.steps.take(chunk);
          await this.steps.durable(chunk[chunk.length - 1]!.offset, delivered, taken[taken.length - 1]!.highWatermark);
        } catch (error) {
          // Nothing of this chunk is durable; whatever is queued behind it is dropped and fetched again.
          this.stopped = true;
          this.queue = [];
          this.steps.failed(chunk[0]!.offset, error);
        }
      }
    } finally {
      this.running = null;
      this.wake();
    }
  }

  private wake(): void {
    if (this.queue.length <= MAX_QUEUED || this.stopped) for (const wake of this.room.splice(0)) wake();
  }
}
