/** How a partition's offsets reach the group: kafkajs' commitOffsets. */
export type CommitOffsets = (offsets: Array<{ topic: string; partition: number; offset: string }>) => Promise<void>;

/**
 * Chunks of one partition whose answers may still be on their way: beyond this, intake waits. Their
 * encoded answers are held until Kafka has them: 16 made a full storm's workers hold ~60 MB of them.
 */
const MAX_UNDELIVERED_CHUNKS = 4;

interface PartitionCommits {
  /** Resolves when every chunk handed in so far has been delivered (or the partition is broken). */
  chain: Promise<void>;
  undelivered: number;
  /** The last offset whose chunk, and every chunk before it, is durable and delivered. */
  delivered: bigint | null;
  committed: bigint | null;
  /** A delivery failed (shutdown): nothing after it may be committed. */
  broken: boolean;
}

/**
 * Commits a partition's offsets only once their chunks' answers are on Kafka — without holding the
 * fetch loop for it. kafkajs fetches the next records from the *resolved* offset and fetches again
 * only when every batch of the last fetch has returned; a batch that waited for its answers'
 * acknowledgement made every record wait for a queue of round trips. So intake resolves a chunk's
 * offset once it is durable (the fetch moves on), hands its delivery here, and the committer
 * commits, in chunk order and a few times a second, what has been delivered. A record whose
 * answer was never delivered is behind the committed offset: the next owner answers it again.
 */
export class OffsetCommitter {
  private readonly partitions = new Map<number, PartitionCommits>();
  private timer: NodeJS.Timeout | undefined;
  private committing: Promise<void> = Promise.resolve();

  constructor(
    private readonly topic: string,
    private readonly commit: CommitOffsets,
    private readonly onError: (error: unknown) => void,
    private readonly everyMs = 200,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.commitDelivered(), this.everyMs);
    this.timer.unref();
  }

  /**
   * The chunk ending at `offset` is durable; `delivered` resolves when its answers are on Kafka.
   * Resolves at once, unless too many of the partition's chunks are still undelivered.
   */
  async add(partition: number, offset: string, delivered: Promise<void>): Promise<void> {
    let p = this.partitions.get(partition);
    if (!p) {
      p = { chain: Promise.resolve(), undelivered: 0, delivered: null, committed: null, broken: false };
      this.partitions.set(partition, p);
    }
    const state = p;
    state.undelivered++;
    state.chain = state.chain
      .then(() => delivered)
      .then(
        () => {
          if (!state.broken) state.delivered = BigInt(offset);
        },
        () => {
          state.broken = true;
        },
      )
      .finally(() => state.undelivered--);
    if (state.undelivered > MAX_UNDELIVERED_CHUNKS) await state.chain;
  }

  /** The partition moved: whatever it delivered is the new owner's to commit (it answers the rest again). */
  forget(partition: number): void {
    this.partitions.delete(partition);
  }

  /** Commits what every owned partition has delivered since the last commit. Never runs twice at once. */
  commitDelivered(): Promise<void> {
    this.committing = this.committing.then(async () => {
      // What is sent is taken now: chunks delivered while the commit is on its way are the next
      // commit's (marking them committed too would leave them uncommitted until a redelivery).
      const due = [...this.partitions]
        .filter(([, p]) => p.delivered !== null && p.delivered !== p.committed)
        .map(([partition, p]) => ({ partition, p, sent: p.delivered! }));
      if (!due.length) return;
      try {
        // The committed offset is the next record to read.
        await this.commit(due.map(({ partition, sent }) => ({ topic: this.topic, partition, offset: String(sent + 1n) })));
        for (const { p, sent } of due) p.committed = sent;
      } catch (error) {
        this.onError(error);
      }
    });
    return this.committing;
  }

  /** Waits (up to the caller's deadline) for every handed-in delivery, then commits once more. */
  async flush(): Promise<void> {
    await Promise.all([...this.partitions.values()].map((p) => p.chain));
    await this.commitDelivered();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
