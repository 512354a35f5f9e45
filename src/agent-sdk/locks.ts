import { createPool, type Pool } from '../db/index.ts';
import { LockStore, withLease, type AcquireResult, type Lease, type LockRow } from '../locks/index.ts';

/**
 * The lock API for agents that act on infrastructure directly: the same fenced leases the workers
 * take (and honour). Pass the fencing token to whatever you write to, so a stale holder is refused.
 */
export class ArbiterLocks {
  private readonly pool: Pool;
  private readonly store: LockStore;

  constructor(
    databaseUrl: string,
    private readonly agentId: string,
  ) {
    this.pool = createPool(databaseUrl, 4);
    this.store = new LockStore(this.pool);
  }

  private owner(): string {
    return `agent:${this.agentId}`;
  }

  acquire(resourceArn: string, ttlMs = 300_000): Promise<AcquireResult> {
    return this.store.acquire({ resourceArn, owner: this.owner(), agentId: this.agentId, ttlMs });
  }

  renew(resourceArn: string, fencingToken: number, ttlMs = 300_000): Promise<boolean> {
    return this.store.renew({ resourceArn, owner: this.owner(), fencingToken, ttlMs });
  }

  release(resourceArn: string, fencingToken: number): Promise<boolean> {
    return this.store.release({ resourceArn, owner: this.owner(), fencingToken });
  }

  list(options: { heldOnly?: boolean; resourceArn?: string } = {}): Promise<LockRow[]> {
    return this.store.list(options);
  }

  /**
   * Acquire, renew while `fn` runs, release. `lease.signal` aborts if the lease is lost. (The
   * worker's hand-off of a release to its own statement is not offered: `release` is the agent's.)
   */
  withLock<T>(resourceArn: string, fn: (lease: Omit<Lease, 'handOff'>) => Promise<T>, options: { ttlMs?: number } = {}): Promise<T> {
    return withLease(this.store, { resourceArn, owner: this.owner(), agentId: this.agentId, ttlMs: options.ttlMs ?? 300_000 }, fn);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
