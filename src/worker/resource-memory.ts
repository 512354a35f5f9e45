import type { RecentChange } from '../decide/index.ts';

/**
 * What a partition owner remembers about its resources between executions: the last version it
 * committed (to notice changes made behind Arbiter's back) and recent changes (for the conflict
 * matrix). Rebuilt from Postgres when a partition moves.
 */
export class ResourceMemory {
  private readonly versions = new Map<string, number>();
  private readonly changes = new Map<string, RecentChange[]>();

  constructor(private readonly historyMs: number) {}

  knownVersion(arn: string): number | undefined {
    return this.versions.get(arn);
  }

  recentChanges(arn: string, now: number): RecentChange[] {
    const list = this.changes.get(arn);
    if (!list) return [];
    const fresh = list.filter((c) => now - c.at < this.historyMs);
    if (fresh.length !== list.length) this.changes.set(arn, fresh);
    return fresh;
  }

  recordChange(arn: string, change: RecentChange): void {
    if (change.resourceVersion !== null) this.versions.set(arn, change.resourceVersion);
    const list = this.changes.get(arn) ?? [];
    list.push(change);
    this.changes.set(arn, list);
  }

  setVersion(arn: string, version: number): void {
    this.versions.set(arn, version);
  }

  prune(now: number): void {
    for (const [arn, list] of this.changes) {
      // A list with nothing expired is kept as it is: a copy of each of a partition's thousands of
      // lists on every reap lived long enough to become old-generation garbage (5 % of what
      // survived the scavenges at a steady 1,000 requests/s; docs/BENCHMARKS.md, tenth pass).
      if (!list.some((c) => now - c.at >= this.historyMs)) continue;
      const fresh = list.filter((c) => now - c.at < this.historyMs);
      if (fresh.length) this.changes.set(arn, fresh);
      else this.changes.delete(arn);
    }
  }
}
