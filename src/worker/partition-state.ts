import { Coalescer } from '../coalesce/index.ts';
import type { PendingRequest } from './pending.ts';
import { ResourceMemory } from './resource-memory.ts';
import { ScopeQueue } from './scope-queue.ts';

/**
 * Everything a worker holds for one partition it owns. Dropped when the partition is revoked and
 * rebuilt from Postgres by the next owner, so nothing here is the only copy of anything.
 */
export class PartitionState {
  readonly coalescer = new Coalescer();
  readonly memory: ResourceMemory;
  /** Pending primaries by requestId, so duplicates can attach to them. */
  readonly primaries = new Map<string, PendingRequest>();
  readonly queues = new Map<string, ScopeQueue>();
  closed = false;

  constructor(
    readonly partition: number,
    historyMs: number,
    private readonly makeQueue: (scope: string, state: PartitionState) => ScopeQueue,
  ) {
    this.memory = new ResourceMemory(historyMs);
  }

  enqueue(entry: PendingRequest): void {
    this.primaries.set(entry.request.requestId, entry);
    let queue = this.queues.get(entry.scope);
    if (!queue) {
      queue = this.makeQueue(entry.scope, this);
      this.queues.set(entry.scope, queue);
    }
    queue.push(entry);
  }

  /** Called by a queue when its entry reached a final outcome. */
  settled(entry: PendingRequest): void {
    this.primaries.delete(entry.request.requestId);
  }

  get pendingCount(): number {
    return this.primaries.size;
  }

  /** Stops scheduling; an execution already running finishes (its lock and fencing keep it safe). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
