import { setTimeout as sleep } from 'node:timers/promises';
import type { Observation, ObservedChange } from '../../src/index.ts';
import { type ActionContext, type ActionRequest, type FleetErrorCode, prepareAction, refuse } from './fleet-actions.ts';
import type { ExecutionRecord } from './executions.ts';
import { type FleetSpec, parseFleetSpec } from './fleet-spec.ts';
import {
  buildState,
  describe,
  effectiveRequestIds,
  type FencedAttempt,
  type FleetState,
  type FleetStats,
  observe,
  recordApplied,
  recordFenced,
  type Resource,
  unknownObservation,
} from './fleet-state.ts';
import type { ViolationReport } from './violations.ts';

export type ActionResult =
  | { ok: true; version: number; detail: string }
  | { ok: false; code: FleetErrorCode; detail: string; version?: number; highestToken?: number };

/** What the fleet reports of a resource to Arbiter's detector (an observation without id and time). */
export interface FleetObservation {
  resourceArn: string;
  version: number;
  state: Record<string, unknown>;
  source: string;
  effectiveRequestIds: string[] | null;
  recentChanges: ObservedChange[];
}

export interface FleetOptions {
  /** Multiplies every latency and the restart settle time, so tests and benchmarks can compress time (0.01). */
  latencyScale?: number;
  /** Decides injected failures; pass a seeded one for reproducible runs. */
  random?: () => number;
}

export interface FleetResourceSummary {
  arn: string;
  kind: Resource['kind'];
  version: number;
  state: Record<string, unknown>;
}

/**
 * An in-memory stand-in for infrastructure: deployments, their pods, and nodes. It executes
 * whatever it is asked, as real infrastructure would, and records the incoherent outcomes.
 * Lookups are by ARN in a map, so fleets of tens of thousands of resources stay cheap.
 */
export class Fleet {
  private state: FleetState;
  private random: () => number;

  constructor(spec: FleetSpec = parseFleetSpec({}), options: FleetOptions = {}) {
    this.random = options.random ?? Math.random;
    this.state = buildState(spec, options.latencyScale ?? 1);
  }

  get spec(): FleetSpec {
    return this.state.spec;
  }

  get size(): number {
    let size = 0;
    for (const resource of this.state.resources.values()) if (resource.kind !== 'pod' || resource.present) size += 1;
    return size;
  }

  /**
   * Refuses an action whose fencing token no lease issued (higher than the highest Arbiter's lock
   * store gave out for the resource): 409 FENCED, recorded with the fenced attempts, no effect.
   */
  refuseUnissuedToken(req: ActionRequest & { fencingToken: number }, highestIssued: number): ActionResult {
    const state = this.state;
    recordFenced(state, {
      at: Date.now(),
      arn: req.arn,
      requestId: req.requestId,
      agentId: req.agentId,
      action: req.action,
      fencingToken: req.fencingToken,
      highestToken: highestIssued,
      reason: 'not_issued',
    });
    const version = state.resources.get(req.arn)?.version;
    return {
      ok: false,
      code: 'FENCED',
      detail: `fencing token ${req.fencingToken} was never issued: the highest lease Arbiter gave out for this resource has token ${highestIssued}`,
      ...(version !== undefined ? { version } : {}),
      highestToken: highestIssued,
    };
  }

  /** Resolves when the action has finished (after its latency), like a synchronous infrastructure API. */
  async execute(req: ActionRequest): Promise<ActionResult> {
    // Everything below uses the state the action started in: a reset meanwhile leaves it alone.
    const state = this.state;
    const resource = state.resources.get(req.arn);
    if (!resource) {
      state.stats.rejected += 1;
      return refuse('NOT_FOUND', `no resource ${req.arn}`);
    }
    // A pod slot that existed and was scaled away: gone (410), not unknown.
    if (resource.kind === 'pod' && !resource.present) {
      state.stats.rejected += 1;
      return refuse('RESOURCE_REMOVED', `pod ${req.arn} was scaled away`);
    }

    const highest = state.highestToken.get(req.arn);
    if (req.fencingToken !== undefined && highest !== undefined && req.fencingToken < highest) {
      recordFenced(state, {
        at: Date.now(),
        arn: req.arn,
        requestId: req.requestId,
        agentId: req.agentId,
        action: req.action,
        fencingToken: req.fencingToken,
        highestToken: highest,
      });
      return {
        ok: false,
        code: 'FENCED',
        detail: `fencing token ${req.fencingToken} is lower than ${highest}, already seen for this resource`,
        version: resource.version,
        highestToken: highest,
      };
    }

    const ctx: ActionContext = { state, req, now: Date.now, schedule: (ms, fn) => this.schedule(state, ms, fn) };
    const prepared = prepareAction(ctx, resource);
    if (!prepared.ok) {
      state.stats.rejected += 1;
      return { ...prepared, version: resource.version };
    }
    if (req.fencingToken !== undefined) state.highestToken.set(req.arn, Math.max(highest ?? req.fencingToken, req.fencingToken));

    this.checkDuplicate(state, resource, req);
    count(state.stats.executions, req.action);
    state.stats.total += 1;
    state.stats.inFlight += 1;
    resource.inProgress.push({ requestId: req.requestId, agentId: req.agentId });
    const execution = state.executions.start({ requestId: req.requestId, agentId: req.agentId, arn: req.arn, action: req.action, startedAt: Date.now() });
    let ok = false;
    // Decided up front: an action doomed to fail has no effect at all, not even a transient one.
    const doomed = this.random() < (state.spec.failureRate[req.action as keyof FleetSpec['failureRate']] ?? 0);
    try {
      if (!doomed) prepared.start();
      await sleep(this.latencyOf(state, req.action));
      const finished = doomed ? refuse('INJECTED_FAILURE', `injected failure of ${req.action}`) : prepared.finish();
      if (!finished.ok) {
        count(state.stats.failed, req.action);
        return { ...finished, version: resource.version };
      }
      recordApplied(state, resource, req);
      this.changed(resource);
      count(state.stats.completed, req.action);
      ok = true;
      return { ok: true, version: resource.version, detail: finished.detail };
    } finally {
      execution.finishedAt = Date.now();
      execution.ok = ok;
      const index = resource.inProgress.findIndex((p) => p.requestId === req.requestId);
      if (index >= 0) resource.inProgress.splice(index, 1);
      state.stats.inFlight -= 1;
    }
  }

  /** Told of every applied change (an observation feed publishes them). */
  onChange: ((observation: FleetObservation) => void) | null = null;

  private changed(resource: Resource): void {
    if (this.onChange) this.onChange(this.report(resource));
  }

  /** The resource as an observer reports it to Arbiter's detector. */
  report(resource: Resource): FleetObservation {
    return {
      resourceArn: resource.arn,
      version: resource.version,
      state: describe(resource),
      source: 'executor:sim-fleet',
      effectiveRequestIds: effectiveRequestIds(resource),
      recentChanges: resource.changes.map((c) => ({ ...c })),
    };
  }

  /** Every resource as reported (removed pods left out): a periodic snapshot. */
  reportAll(): FleetObservation[] {
    const all: FleetObservation[] = [];
    for (const resource of this.state.resources.values()) if (resource.kind !== 'pod' || resource.present) all.push(this.report(resource));
    return all;
  }

  observe(arn: string): Observation {
    const resource = this.state.resources.get(arn);
    return resource ? observe(resource) : unknownObservation(arn);
  }

  list(filter: { kind?: string; limit?: number; offset?: number } = {}): { total: number; resources: FleetResourceSummary[] } {
    const offset = filter.offset ?? 0;
    const limit = filter.limit ?? Infinity;
    const resources: FleetResourceSummary[] = [];
    let total = 0;
    for (const resource of this.state.resources.values()) {
      if (resource.kind === 'pod' && !resource.present) continue;
      if (filter.kind && resource.kind !== filter.kind) continue;
      if (total >= offset && resources.length < limit) {
        resources.push({ arn: resource.arn, kind: resource.kind, version: resource.version, state: describe(resource) });
      }
      total += 1;
    }
    return { total, resources };
  }

  violations(): ViolationReport {
    return this.state.violations.report();
  }

  /**
   * Executions started (the last 100,000), oldest first; with markers, those on an ARN containing
   * one of them. Rejected and fenced calls are not executions.
   */
  executions(markers: string | readonly string[] = []): ExecutionRecord[] {
    return this.state.executions.list(typeof markers === 'string' ? [markers] : markers);
  }

  fenced(): FencedAttempt[] {
    return this.state.fenced.map((f) => ({ ...f }));
  }

  stats(): FleetStats {
    const { stats } = this.state;
    return { ...stats, executions: { ...stats.executions }, completed: { ...stats.completed }, failed: { ...stats.failed } };
  }

  /** A fresh fleet (same spec unless given), with no violations, stats, fencing memory or pending replacements. */
  reset(spec: FleetSpec = this.state.spec, options: FleetOptions = {}): void {
    this.close();
    if (options.random) this.random = options.random;
    this.state = buildState(spec, options.latencyScale ?? this.state.latencyScale);
  }

  /** Cancels pending replacements, so nothing keeps the process alive. */
  close(): void {
    for (const timer of this.state.timers) clearTimeout(timer);
    this.state.timers.clear();
  }

  private latencyOf(state: FleetState, action: string): number {
    return (state.spec.latencyMs[action as keyof FleetSpec['latencyMs']] ?? 0) * state.latencyScale;
  }

  private schedule(state: FleetState, ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      state.timers.delete(timer);
      fn();
    }, ms);
    state.timers.add(timer);
  }

  /** Arbiter must never run a requestId twice; the fleet is where that would show. */
  private checkDuplicate(state: FleetState, resource: Resource, req: ActionRequest): void {
    const running = resource.inProgress.some((p) => p.requestId === req.requestId);
    if (!running && !state.appliedEver.has(req.requestId)) return;
    state.violations.record({
      kind: 'duplicate_execution',
      arn: resource.arn,
      detail: `request ${req.requestId} executed again while ${running ? 'still running' : 'already applied'}`,
      requestIds: [req.requestId],
      agentIds: [req.agentId],
    });
  }
}

function count(counter: Record<string, number>, key: string): void {
  counter[key] = (counter[key] ?? 0) + 1;
}
