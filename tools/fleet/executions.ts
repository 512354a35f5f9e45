/** One execution the fleet started: what tests use to prove no step ran twice or before its predecessor finished. */
export interface ExecutionRecord {
  requestId: string;
  agentId: string;
  arn: string;
  action: string;
  /** Epoch milliseconds. */
  startedAt: number;
  /** Null while it runs. */
  finishedAt: number | null;
  /** Null while it runs; false for a failure after starting (injected, or refused at its finish). */
  ok: boolean | null;
}

/** Enough for any test or lab run; a long benchmark keeps only its tail. */
const EXECUTIONS_KEPT = 100_000;

/**
 * The most recent executions, oldest first. A ring, not an array shifted at the front: a storm of
 * executions against a full log would otherwise copy it on every one.
 */
export class ExecutionLog {
  private readonly ring: ExecutionRecord[] = [];
  private next = 0;

  constructor(private readonly capacity = EXECUTIONS_KEPT) {}

  /** Returns the stored record, which the fleet completes in place when the execution finishes. */
  start(record: Omit<ExecutionRecord, 'finishedAt' | 'ok'>): ExecutionRecord {
    const stored: ExecutionRecord = { ...record, finishedAt: null, ok: null };
    if (this.ring.length < this.capacity) this.ring.push(stored);
    else {
      this.ring[this.next] = stored;
      this.next = (this.next + 1) % this.capacity;
    }
    return stored;
  }

  /** Copies, oldest first; with markers, only executions whose ARN contains one of them. */
  list(markers: readonly string[] = []): ExecutionRecord[] {
    const ordered = [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    const kept = markers.length === 0 ? ordered : ordered.filter((e) => markers.some((m) => e.arn.includes(m)));
    return kept.map((e) => ({ ...e }));
  }
}
