import { BatchWriter, type Pool } from '../db/index.ts';

export interface LockHolder {
  owner: string;
  agentId: string | null;
  fencingToken: number;
  expiresAt: Date;
}

export interface AcquireInput {
  resourceArn: string;
  owner: string;
  agentId?: string | null;
  ttlMs: number;
}

/** A row of arbiter.acquire_locks. */
interface AcquireRow {
  acquired: boolean;
  fencing_token: number;
  expires_at: Date;
  holder_owner: string;
  holder_agent: string | null;
  holder_token: number;
  holder_expires_at: Date;
  expired_owner: string | null;
  expired_agent: string | null;
  expired_token: number;
  expired_at: Date;
}

export interface ReleaseInput {
  resourceArn: string;
  owner: string;
  fencingToken: number;
  detail?: string;
}

export type AcquireResult =
  | { acquired: true; fencingToken: number; expiresAt: Date }
  | { acquired: false; holder: LockHolder };

export interface LockRow {
  resourceArn: string;
  owner: string | null;
  agentId: string | null;
  fencingToken: number;
  acquiredAt: Date | null;
  renewedAt: Date | null;
  expiresAt: Date | null;
}

export interface ExpiredLock {
  resourceArn: string;
  owner: string;
  agentId: string | null;
  fencingToken: number;
  expiresAt: Date;
}

/**
 * The CTEs that release leases, for a statement with a CTE (named by `input`) of (resource_arn,
 * owner, fencing_token, detail), at most one row per resource: a lease is released only if that owner
 * still holds it with that token, and each release goes into the lock log. `lease_released` holds
 * the ARNs released. Shared by LockStore.release and the worker's final-decision statement
 * (finalize-many.ts), which releases the execution's lease together with recording its decision.
 * The rows are locked in ARN order before the update (one order for every caller), and the agent
 * is read from the row as it was, to go into the lock log.
 */
export function releaseLeases(input: string): string {
  return `lease_old AS (
               SELECT l.resource_arn, l.agent_id FROM arbiter.locks l JOIN ${input} i USING (resource_arn) ORDER BY l.resource_arn FOR UPDATE OF l),
             lease_released AS (
               UPDATE arbiter.locks l
                  SET owner = NULL, agent_id = NULL, expires_at = NULL
                 FROM lease_old old JOIN ${input} i USING (resource_arn)
                WHERE l.resource_arn = old.resource_arn AND l.owner = i.owner AND l.fencing_token = i.fencing_token
                RETURNING l.resource_arn, old.agent_id, i.owner, i.fencing_token, i.detail),
             lease_logged AS (
               INSERT INTO arbiter.lock_events (resource_arn, event, owner, agent_id, fencing_token, detail)
               SELECT resource_arn, 'released', owner, agent_id, fencing_token, detail FROM lease_released)`;
}

/** What the store reports, so callers count contention without the store knowing about metrics. */
export interface LockListener {
  acquireFailed?(resourceArn: string, agentId: string | null, holder: LockHolder): void;
  expired?(lock: ExpiredLock): void;
}

/**
 * Fenced leases in Postgres, keyed by resource ARN. All times come from the database clock, so
 * workers and agents on different hosts agree on expiry. Every acquire, failed acquire, renewal,
 * release, expiry and fenced-off write is written to arbiter.lock_events in the same transaction.
 */
export class LockStore {
  constructor(
    private readonly pool: Pool,
    private readonly listener: LockListener = {},
  ) {}

  /**
   * One round trip: arbiter.acquire_locks (migrations 0011, 0012) locks the row, decides, and writes
   * the event; leases asked for at the same time share the statement (never two of one resource).
   */
  async acquire(input: AcquireInput): Promise<AcquireResult> {
    const agentId = input.agentId ?? null;
    const r = await this.acquisitions.add({ ...input, agentId });
    if (!r.acquired) {
      const holder: LockHolder = { owner: r.holder_owner, agentId: r.holder_agent, fencingToken: Number(r.holder_token), expiresAt: r.holder_expires_at };
      this.listener.acquireFailed?.(input.resourceArn, agentId, holder);
      return { acquired: false, holder };
    }
    // Expired unreleased and not yet reaped: the function recorded the expiry before taking over.
    if (r.expired_owner !== null) {
      this.listener.expired?.({ resourceArn: input.resourceArn, owner: r.expired_owner, agentId: r.expired_agent, fencingToken: Number(r.expired_token), expiresAt: r.expired_at });
    }
    return { acquired: true, fencingToken: Number(r.fencing_token), expiresAt: r.expires_at };
  }

  private readonly acquisitions = new BatchWriter<AcquireInput, AcquireRow>((items) => this.acquireMany(items), 200, 2, (item) => item.resourceArn);

  private async acquireMany(items: AcquireInput[]): Promise<AcquireRow[]> {
    const { rows } = await this.pool.query({
      name: 'arbiter_acquire_locks',
      text: `SELECT resource_arn, acquired, fencing_token, expires_at, holder_owner, holder_agent, holder_token, holder_expires_at,
                    expired_owner, expired_agent, expired_token, expired_at
               FROM arbiter.acquire_locks($1::text[], $2::text[], $3::text[], $4::integer[])`,
      values: [items.map((i) => i.resourceArn), items.map((i) => i.owner), items.map((i) => i.agentId ?? null), items.map((i) => i.ttlMs)],
    });
    const byArn = new Map(rows.map((r: AcquireRow & { resource_arn: string }) => [r.resource_arn, r]));
    return items.map((i) => byArn.get(i.resourceArn)!);
  }

  /** Extends the lease if this owner still holds it with this token; false means the lock was lost. */
  async renew(input: { resourceArn: string; owner: string; fencingToken: number; ttlMs: number }): Promise<boolean> {
    const { rows } = await this.pool.query(
      `WITH renewed AS (
         UPDATE arbiter.locks
            SET renewed_at = now(), expires_at = now() + make_interval(secs => $4::double precision / 1000)
          WHERE resource_arn = $1 AND owner = $2 AND fencing_token = $3 AND expires_at > now()
          RETURNING resource_arn, owner, agent_id, fencing_token)
       INSERT INTO arbiter.lock_events (resource_arn, event, owner, agent_id, fencing_token, ttl_ms)
       SELECT resource_arn, 'renewed', owner, agent_id, fencing_token, $4 FROM renewed
       RETURNING 1`,
      [input.resourceArn, input.owner, input.fencingToken, input.ttlMs],
    );
    if (rows.length) return true;
    await this.recordEvent(input.resourceArn, 'lost', input.owner, null, input.fencingToken, 'renewal refused: lease expired or taken over');
    return false;
  }

  /**
   * Releases if still held by this owner and token; false when it had already expired or moved on.
   * Releases made at the same time share a statement (a storm's executions end by the hundred).
   */
  release(input: ReleaseInput): Promise<boolean> {
    return this.releases.add(input);
  }

  private readonly releases = new BatchWriter<ReleaseInput, boolean>((items) => this.releaseMany(items), 200, 2, (item) => item.resourceArn);

  private async releaseMany(items: ReleaseInput[]): Promise<boolean[]> {
    const { rows } = await this.pool.query({
      name: 'arbiter_release_many',
      text: `WITH lease_input AS (
               SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) AS t(resource_arn, owner, fencing_token, detail)),
             ${releaseLeases('lease_input')}
             SELECT resource_arn FROM lease_released`,
      values: [items.map((i) => i.resourceArn), items.map((i) => i.owner), items.map((i) => i.fencingToken), items.map((i) => i.detail ?? null)],
    });
    const released = new Set(rows.map((r: { resource_arn: string }) => r.resource_arn));
    return items.map((i) => released.has(i.resourceArn));
  }

  /** Records a write the executor refused because its fencing token was older than one it had seen. */
  async recordFenced(resourceArn: string, owner: string, agentId: string | null, fencingToken: number, detail: string): Promise<void> {
    await this.recordEvent(resourceArn, 'fenced', owner, agentId, fencingToken, detail);
  }

  /** Finds locks that expired unreleased, records each expiry and frees them. */
  async reapExpired(): Promise<ExpiredLock[]> {
    const { rows } = await this.pool.query(
      `WITH expired AS (
         UPDATE arbiter.locks l
            SET owner = NULL, agent_id = NULL, expires_at = NULL
           FROM (SELECT resource_arn, owner, agent_id, fencing_token, expires_at,
                        -- The lease's TTL (its last renewal to its expiry), so ttl_expirations says what was overrun.
                        round(EXTRACT(EPOCH FROM (expires_at - renewed_at)) * 1000)::int AS ttl_ms
                   FROM arbiter.locks
                  WHERE owner IS NOT NULL AND expires_at <= now()
                  FOR UPDATE SKIP LOCKED) old
          WHERE l.resource_arn = old.resource_arn
          RETURNING old.resource_arn, old.owner, old.agent_id, old.fencing_token, old.expires_at, old.ttl_ms)
       INSERT INTO arbiter.lock_events (resource_arn, event, owner, agent_id, fencing_token, ttl_ms, detail)
       SELECT resource_arn, 'expired', owner, agent_id, fencing_token, ttl_ms, 'expired unreleased at ' || expires_at FROM expired
       RETURNING resource_arn, owner, agent_id, fencing_token`,
    );
    const expired = rows.map((r) => ({
      resourceArn: r.resource_arn,
      owner: r.owner,
      agentId: r.agent_id,
      fencingToken: Number(r.fencing_token),
      expiresAt: new Date(),
    }));
    for (const lock of expired) this.listener.expired?.(lock);
    return expired;
  }

  async list(options: { heldOnly?: boolean; resourceArn?: string } = {}): Promise<LockRow[]> {
    const { rows } = await this.pool.query(
      `SELECT resource_arn, owner, agent_id, fencing_token, acquired_at, renewed_at, expires_at
         FROM arbiter.locks
        WHERE ($1::boolean IS NOT TRUE OR (owner IS NOT NULL AND expires_at > now()))
          AND ($2::text IS NULL OR resource_arn = $2)
        ORDER BY resource_arn`,
      [options.heldOnly ?? false, options.resourceArn ?? null],
    );
    return rows.map((r) => ({
      resourceArn: r.resource_arn,
      owner: r.owner,
      agentId: r.agent_id,
      fencingToken: Number(r.fencing_token),
      acquiredAt: r.acquired_at,
      renewedAt: r.renewed_at,
      expiresAt: r.expires_at,
    }));
  }

  private async recordEvent(
    resourceArn: string,
    event: 'fenced' | 'lost',
    owner: string,
    agentId: string | null,
    fencingToken: number,
    detail: string,
  ): Promise<void> {
    await this.pool.query(
      `INSERT INTO arbiter.lock_events (resource_arn, event, owner, agent_id, fencing_token, detail) VALUES ($1, $2, $3, $4, $5, $6)`,
      [resourceArn, event, owner, agentId, fencingToken, detail],
    );
  }
}
