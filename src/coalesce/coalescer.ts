import type { FinalDecision } from '../contract/decision.ts';

interface Entry {
  /**
   * What a duplicate matches, one object per primary and state: every duplicate of a primary gets
   * the same one, so the arrival rules derive the duplicates' decision once (decide/arrival.ts).
   */
  match: CoalesceMatch;
  /** Undefined while the primary is pending or running. */
  finishedAt?: number;
  windowMs: number;
}

export type CoalesceMatch =
  | { kind: 'in-flight'; primaryRequestId: string }
  | { kind: 'finished'; primaryRequestId: string; outcome: FinalDecision };

/**
 * Tracks, per coalesce key, the current primary: in flight, or finished less than its window ago.
 * Pure and clock-free (`now` is passed in), so it is unit-tested without timers. A partition's
 * coalescer is rebuilt from Postgres when the partition moves to another worker.
 */
export class Coalescer {
  private readonly entries = new Map<string, Entry>();

  /** The primary a request with this key should merge into, if any. */
  match(key: string, now: number): CoalesceMatch | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.finishedAt === undefined) return entry.match;
    // Only a success absorbs later duplicates: a retry after a failure or rejection deserves to run.
    if (entry.match.kind === 'finished' && entry.match.outcome.status === 'EXECUTED' && now - entry.finishedAt < entry.windowMs) return entry.match;
    this.entries.delete(key);
    return undefined;
  }

  startPrimary(key: string, primaryRequestId: string, windowMs: number): void {
    this.entries.set(key, { match: { kind: 'in-flight', primaryRequestId }, windowMs });
  }

  /** Records the primary's outcome; later duplicates within the window receive it. */
  finish(key: string, primaryRequestId: string, outcome: FinalDecision, finishedAt: number): void {
    const entry = this.entries.get(key);
    if (!entry || entry.match.primaryRequestId !== primaryRequestId) return;
    entry.finishedAt = finishedAt;
    entry.match = { kind: 'finished', primaryRequestId, outcome };
  }

  /** Drops entries whose window has passed, so memory stays bounded by the recent key count. */
  prune(now: number): number {
    let dropped = 0;
    for (const [key, entry] of this.entries) {
      if (entry.finishedAt !== undefined && now - entry.finishedAt >= entry.windowMs) {
        this.entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  get size(): number {
    return this.entries.size;
  }
}
