/**
 * Group commit for single-row writes that each want their own answer: callers add one item and get
 * its result; while a statement runs, the items added meanwhile wait and go together in the next
 * (up to `maxItems`), so under load many callers share one statement and one commit, and a lone
 * caller at low load is written at once. A combined write that fails is tried again item by item,
 * so a failure reaches only the caller whose item causes it.
 */
export class BatchWriter<I, O> {
  private waiting: Array<{ item: I; resolve: (result: O) => void; reject: (error: unknown) => void }> = [];
  private running = 0;

  constructor(
    /** Writes the items; resolves with one result per item, in order. */
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly maxItems: number,
    /** Combined writes in flight at once (each on its own connection). */
    private readonly concurrency = 2,
    /** Items that must not share a statement go to the next one (e.g. two upserts of one row). */
    private readonly conflictKey: (item: I) => string | null = () => null,
  ) {}

  add(item: I): Promise<O> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.running < this.concurrency) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running++;
    try {
      while (this.waiting.length) await this.writeGroup(this.takeGroup());
    } finally {
      this.running--;
    }
  }

  private takeGroup(): typeof this.waiting {
    const group: typeof this.waiting = [];
    const keys = new Set<string>();
    const later: typeof this.waiting = [];
    while (this.waiting.length && group.length < this.maxItems) {
      const next = this.waiting.shift()!;
      const key = this.conflictKey(next.item);
      if (key !== null && keys.has(key)) {
        later.push(next);
        continue;
      }
      if (key !== null) keys.add(key);
      group.push(next);
    }
    this.waiting.unshift(...later);
    return group;
  }

  private async writeGroup(group: typeof this.waiting): Promise<void> {
    try {
      const results = await this.write(group.map((g) => g.item));
      group.forEach((g, i) => g.resolve(results[i]!));
    } catch (error) {
      if (group.length === 1) {
        group[0]!.reject(error);
        return;
      }
      for (const g of group) {
        await this.write([g.item]).then(
          ([result]) => g.resolve(result!),
          (alone: unknown) => g.reject(alone),
        );
      }
    }
  }
}
