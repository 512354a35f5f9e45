import { NextTurn } from '../contract/next-turn.ts';

/**
 * Group commit for many small writers: callers hand in items, one flush runs at a time and takes
 * everything queued since the last one began. Under load one flush carries many callers' items
 * (one produce request, one UPDATE); a lone caller waits for a single flush, started on the
 * event loop's next turn so that the callers of one turn share it. Each caller's promise
 * settles with the flush that carried its items.
 */
export class GroupFlush<T> {
  private queue: Array<{ items: readonly T[]; resolve: () => void; reject: (error: unknown) => void }> = [];
  private running = false;
  private readonly starter = new NextTurn(() => {
    if (!this.running && this.queue.length) void this.run();
  });

  constructor(
    private readonly flush: (items: T[]) => Promise<void>,
    /** Items per flush; a caller's items are never split (one larger than this is flushed alone). */
    private readonly maxItems: number,
  ) {}

  add(items: readonly T[]): Promise<void> {
    if (!items.length) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      if (!this.running) this.starter.request();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.queue.length) {
      const group: typeof this.queue = [];
      let count = 0;
      while (this.queue.length && (count === 0 || count + this.queue[0]!.items.length <= this.maxItems)) {
        const entry = this.queue.shift()!;
        group.push(entry);
        count += entry.items.length;
      }
      try {
        await this.flush(group.flatMap((g) => g.items));
        for (const g of group) g.resolve();
      } catch (error) {
        for (const g of group) g.reject(error);
      }
    }
    this.running = false;
  }
}
