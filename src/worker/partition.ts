import type { ActionName } from '../contract/actions.ts';
import { followerDecision, type Decision, type FinalDecision } from '../contract/decision.ts';
import type { RemediationRequest } from '../contract/request.ts';
import type { StoredRequest } from '../audit/index.ts';
import { Coalescer, type CoalesceMatch } from '../coalesce/index.ts';
import type { ArrivalView } from '../decide/index.ts';
import type { Clock } from './clock.ts';
import { newPending, type AnsweredRequest, type PendingRequest } from './pending.ts';
import { ResourceMemory } from './resource-memory.ts';
import { ScopeQueue, type StepResult } from './scope-queue.ts';

/** A request and the decision to tell its agent about. */
export interface Answer {
  request: AnsweredRequest;
  scope: string;
  decision: FinalDecision;
}

/** An arrival decision that is durable and may now change memory. */
export interface DurableArrival {
  request: RemediationRequest;
  scope: string;
  coalesceKey: string;
  decision: Decision;
  receivedAt: number;
}

/** One chunk of arrivals being decided: the rules' view, and what the chunk has merged so far. */
export interface Chunk {
  view: ArrivalView;
  /** Records a decision made in this chunk, so later records of the chunk see a new primary. */
  note(requestId: string, coalesceKey: string, decision: Decision): void;
  /** The primary a follower of this chunk was merged into, even if it has settled since. */
  primary(requestId: string): PendingRequest | undefined;
}

export interface PartitionOptions {
  partition: number;
  /** Topic partitions of the requests topic, for re-routing. */
  partitions: number;
  /** Coalescing window per action. */
  windowMs(action: string): number;
  /** How long the conflict matrix looks back. */
  historyMs: number;
  recheckMs: number;
  clock: Clock;
  /** Runs the head of a scope queue: decides and applies; never throws. */
  runHead(partition: Partition, entry: PendingRequest): Promise<StepResult>;
  /** A request left the partition's memory (backpressure may resume). */
  onSettled?(partition: Partition): void;
  /** Followers held in memory at most; beyond it a primary's followers wait in PostgreSQL only. */
  maxWaitingFollowers?: number;
}

/**
 * Everything a worker holds for one partition it owns, and the only code that changes it: the
 * coalescer, the resource memory, the scope queues and the pending primaries. Dropped when the
 * partition is revoked and rebuilt from Postgres by the next owner, so nothing here is the only
 * copy of anything. Memory changes only after the decision behind it is durable.
 */
export class Partition {
  readonly partition: number;
  readonly memory: ResourceMemory;
  private readonly coalescer = new Coalescer();
  private readonly primaries = new Map<string, PendingRequest>();
  private readonly queues = new Map<string, ScopeQueue<PendingRequest>>();
  private isClosed = false;
  private isRevoked = false;
  /** Followers held in memory by the pending primaries. */
  private waitingFollowers = 0;
  /** The last offset of the last chunk accepted: a spilled primary's followers are read back up to it. */
  private acceptedThrough: string | null = null;

  constructor(private readonly options: PartitionOptions) {
    this.partition = options.partition;
    this.memory = new ResourceMemory(Math.max(options.historyMs, 1));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Kafka gave the partition to another worker: what is decided here from now on is not this worker's to record. */
  get revoked(): boolean {
    return this.isRevoked;
  }

  get pendingCount(): number {
    return this.primaries.size;
  }

  /** Whether this request is pending here (queued or running). */
  holds(requestId: string): boolean {
    return this.primaries.has(requestId);
  }

  /**
   * Starts deciding one chunk of arrivals in order. Its view sees the primaries pending in this
   * partition and those accepted earlier in the same chunk (not durable yet, so not in memory
   * yet); it remembers each in-flight primary a follower was merged into, so the follower is
   * answered even if that primary settles before the chunk is durable.
   */
  beginChunk(now: number): Chunk {
    const tentative = new Map<string, CoalesceMatch>();
    const merged = new Map<string, PendingRequest>();
    return {
      view: {
        partition: this.partition,
        partitions: this.options.partitions,
        coalesceMatch: (key): CoalesceMatch | undefined => {
          const inChunk = tentative.get(key);
          if (inChunk) return inChunk;
          const match = this.coalescer.match(key, now);
          if (match?.kind !== 'in-flight') return match;
          const primary = this.primaries.get(match.primaryRequestId);
          // An in-flight primary this owner no longer holds cannot take followers: decide anew.
          if (!primary) return undefined;
          merged.set(primary.request.requestId, primary);
          return match;
        },
      },
      note: (requestId, key, decision) => {
        if (decision.status === 'ACCEPTED') tentative.set(key, { kind: 'in-flight', primaryRequestId: requestId });
      },
      primary: (requestId) => this.primaries.get(requestId) ?? merged.get(requestId),
    };
  }

  /**
   * Applies a chunk's arrival decisions once they are durable: new primaries start their window
   * and join their scope's queue, followers attach to their primary. Returns the answers due now:
   * followers whose primary finished while the chunk was being written.
   */
  accept(chunk: Chunk, arrivals: readonly DurableArrival[], throughOffset: string | null = null): Answer[] {
    const answers: Answer[] = [];
    if (throughOffset !== null) this.acceptedThrough = throughOffset;
    for (const a of arrivals) {
      if (a.decision.status === 'ACCEPTED') {
        this.coalescer.startPrimary(a.coalesceKey, a.request.requestId, this.options.windowMs(a.request.action));
        this.enqueue(newPending(a.request, a.scope, a.coalesceKey, a.receivedAt, a.decision.notBefore));
      } else if (a.decision.status === 'COALESCED' && a.decision.inFlight) {
        const primary = chunk.primary(a.decision.primaryRequestId);
        if (!primary) throw new Error(`follower ${a.request.requestId} merged into ${a.decision.primaryRequestId}, which this partition never held`);
        if (primary.finished) answers.push({ request: a.request, scope: a.scope, decision: followerDecision(primary.request.requestId, primary.finished) });
        else this.attach(primary, a.request, a.scope);
      }
    }
    return answers;
  }

  /**
   * The primary's final decision is durable: its window records the result, the resource memory
   * the change, and its followers are handed back to be told. Synchronously with reading the
   * followers, so a follower attached later sees `finished` instead.
   */
  settle(entry: PendingRequest, decision: FinalDecision, now: number): Answer[] {
    const { request } = entry;
    this.coalescer.finish(entry.coalesceKey, request.requestId, decision, now);
    if (decision.status === 'EXECUTED') {
      this.memory.recordChange(request.resourceArn, {
        requestId: request.requestId,
        agentId: request.agentId,
        action: request.action,
        at: now,
        resourceVersion: decision.resourceVersion,
      });
    }
    entry.finished = decision;
    if (entry.spilled) entry.spilled.through = this.acceptedThrough;
    this.waitingFollowers -= entry.followers.length;
    this.primaries.delete(request.requestId);
    return entry.followers.map((f) => ({ request: f.request, scope: f.scope, decision: followerDecision(request.requestId, decision) }));
  }

  /**
   * Rebuilds this partition from what Postgres holds: recently executed primaries (coalescing
   * windows and conflict history), open requests back into their queues, and the answers never
   * published. `primaryDecisions` are the final decisions of primaries that unpublished followers
   * merged into.
   */
  recover(recent: readonly StoredRequest[], open: readonly StoredRequest[], primaryDecisions: ReadonlyMap<string, FinalDecision>, now: number): Answer[] {
    for (const done of recent) this.rememberFinished(done, now);
    const entries = new Map<string, PendingRequest>();
    for (const o of open) {
      if (o.decision) continue;
      entries.set(o.request.requestId, this.pendingFromStore(o));
      this.coalescer.startPrimary(o.coalesceKey, o.request.requestId, this.options.windowMs(o.request.action));
    }
    const answers: Answer[] = [];
    for (const o of open) {
      if (!o.decision) continue;
      const primaryId = o.decision.status === 'COALESCED' ? o.decision.primaryRequestId : null;
      const pending = primaryId ? entries.get(primaryId) : undefined;
      if (pending) {
        this.attach(pending, o.request, o.scope);
        continue;
      }
      const primary = primaryId ? primaryDecisions.get(primaryId) : undefined;
      answers.push({ request: o.request, scope: o.scope, decision: primary ? followerDecision(primaryId!, primary) : o.decision });
    }
    for (const entry of entries.values()) this.enqueue(entry);
    return answers;
  }

  /**
   * Records redelivered after a partition moved may have been decided by the previous owner
   * *after* this worker rebuilt the partition (its last chunk committed to Postgres while its
   * offset commit was refused). They are not decided again — but this owner must know of them: an
   * open request joins its queue, an executed one its coalescing window, a follower its primary.
   */
  adopt(rows: readonly StoredRequest[], now: number): number {
    let adopted = 0;
    for (const row of rows) {
      if (this.primaries.has(row.request.requestId)) continue;
      if (!row.decision) {
        if (!this.coalescer.match(row.coalesceKey, now)) {
          this.coalescer.startPrimary(row.coalesceKey, row.request.requestId, this.options.windowMs(row.request.action));
        }
        this.enqueue(this.pendingFromStore(row));
        adopted++;
      } else if (row.decision.status === 'EXECUTED' && !this.coalescer.match(row.coalesceKey, now)) {
        this.rememberFinished(row, now);
        adopted++;
      } else if (row.decision.status === 'COALESCED' && !row.outcomePublished) {
        const primary = this.primaries.get(row.decision.primaryRequestId);
        // A spilled primary reads its followers back from PostgreSQL, where this one is.
        if (primary && !primary.spilled && !primary.followers.has(row.request.requestId)) {
          this.attach(primary, row.request, row.scope);
          adopted++;
        }
      }
    }
    return adopted;
  }

  /** Remembers the version just observed; returns the one Arbiter knew before (undefined if none). */
  noteObservedVersion(arn: string, version: number): number | undefined {
    const known = this.memory.knownVersion(arn);
    this.memory.setVersion(arn, version);
    return known;
  }

  /** Forgets coalescing windows and conflict history that have passed. */
  prune(now: number): void {
    this.coalescer.prune(now);
    this.memory.prune(now);
  }

  /** The partition moved to another worker: stop, and record nothing more (the new owner recovers it). */
  revoke(): Promise<void> {
    this.isRevoked = true;
    return this.close();
  }

  /** Stops scheduling; an execution already running finishes (its lock and fencing keep it safe). */
  async close(): Promise<void> {
    this.isClosed = true;
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }

  /**
   * A follower waits for its primary in memory — unless the partition already holds its share: then
   * the primary spills (it drops the followers it held; all are in PostgreSQL, read back when it ends).
   */
  private attach(primary: PendingRequest, request: AnsweredRequest, scope: string): void {
    if (primary.spilled) return;
    if (this.waitingFollowers >= (this.options.maxWaitingFollowers ?? Infinity)) {
      primary.spilled = { through: null };
      this.waitingFollowers -= primary.followers.length;
      primary.followers.clear();
      return;
    }
    primary.followers.push(request, scope);
    this.waitingFollowers++;
  }

  /** Followers held in memory now (a gauge, and what the spill threshold compares). */
  get followersInMemory(): number {
    return this.waitingFollowers;
  }

  private enqueue(entry: PendingRequest): void {
    this.primaries.set(entry.request.requestId, entry);
    let queue = this.queues.get(entry.scope);
    if (!queue) {
      const scope = entry.scope;
      const created: ScopeQueue<PendingRequest> = new ScopeQueue(scope, {
        step: (e) => (this.isClosed ? Promise.resolve('deferred' as const) : this.options.runHead(this, e)),
        settled: () => this.options.onSettled?.(this),
        idle: () => {
          if (this.queues.get(scope) === created && created.size === 0) this.queues.delete(scope);
        },
        clock: this.options.clock,
        recheckMs: this.options.recheckMs,
      });
      queue = created;
      this.queues.set(scope, queue);
    }
    queue.push(entry);
  }

  private pendingFromStore(row: StoredRequest): PendingRequest {
    const entry = newPending(row.request, row.scope, row.coalesceKey, row.receivedAt);
    entry.observeFirst = row.executionStarted;
    entry.fromRecovery = true;
    if (row.status === 'DEFERRED') entry.deferredSince = row.receivedAt;
    return entry;
  }

  /** Puts a finished primary back into the coalescing window and conflict history it finished in. */
  private rememberFinished(done: StoredRequest, now: number): void {
    const finishedAt = done.finishedAt ?? now;
    this.coalescer.startPrimary(done.coalesceKey, done.request.requestId, this.options.windowMs(done.request.action));
    this.coalescer.finish(done.coalesceKey, done.request.requestId, done.decision!, finishedAt);
    this.memory.recordChange(done.request.resourceArn, {
      requestId: done.request.requestId,
      agentId: done.request.agentId,
      action: done.request.action,
      at: finishedAt,
      resourceVersion: done.decision?.resourceVersion ?? null,
    });
  }
}

/** The coalescing window of an action, from the per-action settings. */
export function windowOf(actions: Readonly<Record<ActionName, { coalesceWindowMs: number }>>): (action: string) => number {
  return (action) => actions[action as ActionName]?.coalesceWindowMs ?? 0;
}
