import type { PendingRequest } from './pending.ts';

export type StepResult = 'done' | 'deferred';

/**
 * One scope's requests, run one at a time in arrival order. A deferred request stays in the queue
 * and is evaluated again later, while the ones behind it go ahead. Queues of different scopes run
 * independently, so a slow action never holds up another scope.
 */
export class ScopeQueue {
  private readonly entries: PendingRequest[] = [];
  private running: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private closed = false;
  /** Set by push: an entry arrived that the current pass has not looked at yet. */
  private arrived = false;

  constructor(
    readonly scope: string,
    private readonly step: (entry: PendingRequest) => Promise<StepResult>,
    private readonly onSettled: (entry: PendingRequest) => void,
    private readonly onIdle: () => void,
    private readonly recheckMs: number,
  ) {}

  push(entry: PendingRequest): void {
    this.entries.push(entry);
    this.arrived = true;
    if (this.wake) this.wake();
    if (!this.running) this.running = this.loop().finally(() => (this.running = null));
  }

  get size(): number {
    return this.entries.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.closed && this.entries.length) {
      let progressed = false;
      let nextAt = Number.POSITIVE_INFINITY;
      this.arrived = false;
      for (const entry of [...this.entries]) {
        if (this.closed) return;
        const due = Math.max(entry.notBefore, entry.retryAt);
        if (due > Date.now()) {
          nextAt = Math.min(nextAt, due);
          continue;
        }
        let result: StepResult;
        try {
          result = await this.step(entry);
        } catch {
          // The step logs its own failures; try again later rather than lose the request.
          result = 'deferred';
        }
        if (result === 'done') {
          this.entries.splice(this.entries.indexOf(entry), 1);
          this.onSettled(entry);
          progressed = true;
        } else {
          entry.retryAt = Math.max(entry.retryAt, Date.now() + this.recheckMs);
          nextAt = Math.min(nextAt, entry.retryAt);
        }
      }
      // Entries pushed during the pass have not been looked at: go round again rather than sleep past them.
      if (!progressed && !this.arrived && this.entries.length) await this.sleep(nextAt - Date.now());
    }
    if (!this.entries.length) this.onIdle();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(1, Math.min(ms, 60_000)));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
