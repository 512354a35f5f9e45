/**
 * Calls `start` on the event loop's next turn, once however often it is asked for before then.
 * The group-commit writers (audit/arrival-group.ts, worker/group-flush.ts) start a write there
 * rather than at once: what callers hand in during one turn — the chunks of the partitions one
 * fetch brought, and then their answers — goes in one write. At 1,000 requests/s a worker wrote
 * ~90 arrival statements a second for ~50 fetches before.
 */
export class NextTurn {
  private pending = false;

  constructor(private readonly start: () => void) {}

  request(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.start();
    });
  }
}
