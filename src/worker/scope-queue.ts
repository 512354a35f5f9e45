import type { Clock } from './clock.ts';

export type StepResult = 'done' | 'deferred';

/** When an entry may be looked at next. */
export interface Schedulable {
  /** Trailing coalescing: not before this time, so duplicates can join. */
  notBefore: number;
  /** Earliest time to evaluate again after a deferral. */
  retryAt: number;
}

/** All a queue knows of the world: how to run its head, whom to tell, and what time it is. */
export interface ScopeQueueContext<E extends Schedulable> {
  /** Decides and applies the entry; never throws (errors are decisions). */
  step(entry: E): Promise<StepResult>;
  /** The entry reached its final outcome and left the queue. */
  settled(entry: E): void;
  /** The queue is empty and its loop has ended. */
  idle(): void;
  clock: Clock;
  /** A deferred entry is looked at again no sooner than this. */
  recheckMs: number;
}

/** The reason a sleep is cut short: one shared value, not an error built per wake. */
const WOKEN = Symbol('woken');

/** Longest sleep between passes, so a clock jump is noticed within a minute. */
const MAX_SLEEP_MS = 60_000;

/**
 * One scope's requests, run one at a time in arrival order. A deferred request stays in the queue
 * and is evaluated again later, while the ones behind it go ahead. Queues of different scopes run
 * independently, so a slow action never holds up another scope.
 */
export class ScopeQueue<E extends Schedulable> {
  private readonly entries: E[] = [];
  private running: Promise<void> | null = null;
  /**
   * Set only while the loop sleeps. Aborting a controller costs tens of µs (it builds an event,
   * and without a reason a DOMException with its stack), so a push aborts only a real sleep.
   */
  private wake: AbortController | null = null;
  private closed = false;
  /** Set by push: an entry arrived that the current pass has not looked at yet. */
  private arrived = false;

  constructor(
    readonly scope: string,
    private readonly ctx: ScopeQueueContext<E>,
  ) {}

  push(entry: E): void {
    this.entries.push(entry);
    this.arrived = true;
    this.wakeUp();
    if (!this.running && !this.closed) this.running = this.loop().finally(() => (this.running = null));
  }

  get size(): number {
    return this.entries.length;
  }

  /** Stops scheduling; the step in progress (if any) finishes first. */
  async close(): Promise<void> {
    this.closed = true;
    this.wakeUp();
    await this.running;
  }

  private wakeUp(): void {
    this.wake?.abort(WOKEN);
    this.wake = null;
  }

  private async loop(): Promise<void> {
    const { clock } = this.ctx;
    while (!this.closed && this.entries.length) {
      let progressed = false;
      let nextAt = Number.POSITIVE_INFINITY;
      this.arrived = false;
      for (const entry of [...this.entries]) {
        if (this.closed) return;
        const due = Math.max(entry.notBefore, entry.retryAt);
        if (due > clock.now()) {
          nextAt = Math.min(nextAt, due);
          continue;
        }
        let result: StepResult;
        try {
          result = await this.ctx.step(entry);
        } catch {
          // The runner turns every error into a decision and never throws; this guards the loop
          // against a bug in it, so the other entries of the scope keep going.
          result = 'deferred';
        }
        if (result === 'done') {
          this.entries.splice(this.entries.indexOf(entry), 1);
          this.ctx.settled(entry);
          progressed = true;
        } else {
          entry.retryAt = Math.max(entry.retryAt, clock.now() + this.ctx.recheckMs);
          nextAt = Math.min(nextAt, entry.retryAt);
        }
      }
      // Entries pushed during the pass have not been looked at: go round again rather than sleep past them.
      if (!progressed && !this.arrived && this.entries.length && !this.closed) {
        const wake = (this.wake = new AbortController());
        await clock.sleep(Math.min(nextAt - clock.now(), MAX_SLEEP_MS), wake.signal);
        this.wake = null;
      }
    }
    if (!this.entries.length && !this.closed) this.ctx.idle();
  }
}
