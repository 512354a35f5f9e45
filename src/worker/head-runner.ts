import type { ActionName } from '../contract/actions.ts';
import { followerDecision, isFinal, toOutcome, type Decision, type FinalDecision } from '../contract/decision.ts';
import { ArbiterError, errorMessage } from '../contract/errors.ts';
import type { Observation } from '../contract/observation.ts';
import { isConnectionError, isPoolExhausted } from '../db/index.ts';
import { decideAtHead, decideExecution, decideOnError, type HeadFacts, type HeadRules, type RetryPolicy } from '../decide/index.ts';
import type { ExecutionRow } from '../audit/index.ts';
import type { ExecuteInput } from '../executor/index.ts';
import { withLease, type Lease } from '../locks/index.ts';
import type { PipelineContext } from './context.ts';
import type { Answer, Partition } from './partition.ts';
import type { PendingRequest } from './pending.ts';
import type { StepResult } from './scope-queue.ts';

/**
 * The head of a scope queue: gathers the facts the pure rules ask for (dependencies, an
 * observation), runs the action under a fenced lease when they say go, and applies the one
 * decision that comes out — durable first, then memory, then publish. Never throws: an error is a
 * decision too (decideOnError), so nothing is retried forever and nothing is answered twice.
 */
export async function runHead(ctx: PipelineContext, part: Partition, entry: PendingRequest): Promise<StepResult> {
  let decision: Decision;
  try {
    decision = entry.unrecorded ?? (await decide(ctx, part, entry));
  } catch (thrown) {
    const error = asArbiterError(thrown);
    if (error instanceof ArbiterError && error.code === 'SHUTTING_DOWN') {
      // Left open in Postgres: the partition's next owner observes and finishes it.
      ctx.log.info({ requestId: entry.request.requestId }, 'left for the next owner: the worker is shutting down');
      entry.observeFirst = true;
      return 'deferred';
    }
    if (error instanceof ArbiterError && error.code === 'DECIDED_ELSEWHERE') return settleDecidedElsewhere(ctx, part, entry);
    if (!(error instanceof ArbiterError && error.retryable)) entry.errors++;
    decision = decideOnError(error, entry.errors, retryPolicy(ctx), Date.now());
    if (decision.status === 'FAILED' || decision.rule === 'error') {
      ctx.log.error({ err: thrown, requestId: entry.request.requestId, attempt: entry.errors }, 'unexpected error at the head of the queue');
    }
  }
  if (part.revoked && !isFinal(decision)) {
    // The partition moved while this was decided: its new owner recovers the request from
    // PostgreSQL. A final decision is still recorded (finalize takes it only if the request is
    // not final yet): it is a fact — above all a verified execution — and leaving it unrecorded
    // would make the new owner depend on the executor's bounded memory of what it applied.
    return 'deferred';
  }
  try {
    const result = await apply(ctx, part, entry, decision);
    entry.unrecorded = null;
    return result;
  } catch (error) {
    // PostgreSQL failed while recording: nothing was applied. A final decision is kept and recorded
    // as it is on the next attempt (never decided again: the action may have run).
    ctx.log.warn({ err: error, requestId: entry.request.requestId }, 'recording a decision failed; will try again');
    if (isFinal(decision)) entry.unrecorded = decision;
    entry.retryAt = Date.now() + retryPolicy(ctx).backoffMs;
    return 'deferred';
  }
}

async function decide(ctx: PipelineContext, part: Partition, entry: PendingRequest): Promise<Decision> {
  const { request } = entry;
  const now = Date.now();
  const facts: HeadFacts = {};
  for (;;) {
    const step = decideAtHead(entry, facts, part.memory.recentChanges(request.resourceArn, now), headRules(ctx), now);
    if (step.kind === 'need' && step.fact === 'dependencies') {
      facts.dependencies = await ctx.audit.dependencyStatus(request.dependsOn);
    } else if (step.kind === 'need' && step.fact === 'plan') {
      const plan = await ctx.plans.summary(step.planId);
      facts.plans = new Map([...(facts.plans ?? []), [step.planId, plan && { status: plan.status, detail: plan.detail }]]);
    } else if (step.kind === 'need') {
      facts.observation = await ctx.executor.observe(request.resourceArn, ctx.shutdown).catch((error: unknown) => {
        if (ctx.shutdown.aborted) throw shuttingDown(error);
        return { unavailable: errorMessage(error) };
      });
    } else if (step.kind === 'decided') {
      if (step.decision.rule === 'stale' || step.decision.rule === 'conflict' || step.decision.rule === 'budget') {
        noticeOutsideChanges(ctx, part, entry, facts.observation as Observation);
      }
      return step.decision;
    } else {
      noticeOutsideChanges(ctx, part, entry, step.observation);
      // Ownership re-checked before taking the lock: a revoked partition's requests are the new owner's.
      if (part.revoked) throw new ArbiterError('SHUTTING_DOWN', 'the partition was revoked');
      entry.observeFirst = false;
      return execute(ctx, entry);
    }
  }
}

/** Steps 9-10: lock, execute with the fencing token, verify. Throws what decideOnError turns into a decision. */
async function execute(ctx: PipelineContext, entry: PendingRequest): Promise<Decision> {
  const { request } = entry;
  const lease = {
    resourceArn: request.resourceArn,
    owner: leaseOwner(ctx),
    agentId: request.agentId,
    ttlMs: ctx.config.locks.ttlMs,
    renewEveryMs: ctx.config.locks.renewEveryMs,
    // Aborted by shutdown, the action may still run on the target: the lock stays until its TTL.
    holdIfAborted: ctx.shutdown,
  };
  return withLease(ctx.locks, lease, async (held) => {
    const decision = await underLease(ctx, entry, held);
    // A final decision releases the lock in the statement that records it (apply, finalize).
    if (isFinal(decision)) entry.heldLease = held.handOff();
    return decision;
  });
}

/** Under the lock: checks the request's history, runs the action with the fencing token, verifies. */
async function underLease(ctx: PipelineContext, entry: PendingRequest, { fencingToken, signal: leaseSignal, live }: Lease): Promise<Decision> {
  const { request } = entry;
  const owner = leaseOwner(ctx);
  const settings = ctx.config.actions[request.action as ActionName];
  const signal = AbortSignal.any([leaseSignal, ctx.shutdown, AbortSignal.timeout(settings.timeoutMs)]);
  const record = (phase: 'started' | 'failed' | 'recovered' | 'abandoned', resourceVersion: number | null, detail: string | null) =>
    ctx.audit.recordExecution({ ...executionBase(entry), phase, fencingToken, resourceVersion, detail });

  // A partition can have two owners for a moment (one not yet told it lost it): under the lock,
  // a request another owner finished is not run again, and one whose execution ever started is
  // observed first.
  // The common case is one round trip: the state checked and 'started' recorded together. A
  // request recovered from a previous owner is looked at before anything is recorded.
  if (!entry.fromRecovery && !live()) throw lostLease(leaseSignal);
  const history = entry.fromRecovery
    ? { ...(await ctx.audit.executionState(request.requestId)), recorded: false }
    : await ctx.audit.beginExecution({ ...executionBase(entry), phase: 'started', fencingToken, resourceVersion: null, detail: null });
  if (history.final) throw new ArbiterError('DECIDED_ELSEWHERE', `${request.requestId} was decided by another owner: ${history.final.status}`);
  if (history.started) entry.fromRecovery = true;
  if (entry.fromRecovery) {
    // Under the lock nobody else can be acting: if the previous owner ran it, it shows now.
    const seen = await ctx.executor.observe(request.resourceArn, signal);
    if (seen.appliedRequestIds.includes(request.requestId)) {
      await record('recovered', seen.version, 'found applied under the lock after a partition move');
      return { status: 'EXECUTED', rule: 'recovery', resourceVersion: seen.version, fencingToken, detail: 'executed by a previous owner; verified by observation' };
    }
    if (seen.inProgressRequestIds.includes(request.requestId)) {
      return { status: 'DEFERRED', rule: 'recovery', detail: 'a previous owner is still running this action', retryAt: null, observeFirst: true };
    }
    entry.fromRecovery = false;
  }

  const started = Date.now();
  if (!history.recorded) {
    if (!live()) throw lostLease(leaseSignal);
    await record('started', null, null);
  }
  ctx.metrics.executionsRunning.inc();
  const input: ExecuteInput = { requestId: request.requestId, agentId: request.agentId, arn: request.resourceArn, action: request.action, params: request.params, fencingToken, signal };
  try {
    const result = await ctx.executor.execute(input);
    if (!result.ok) {
      await record('failed', null, result.detail);
      return decideExecution({ fencingToken, result });
    }
    const verified = await ctx.executor.verify(input, result);
    ctx.metrics.observeExecution(request.action, (Date.now() - started) / 1000);
    // A late answer (the lease ran out while this owner was stalled) is never recorded as this
    // owner's result: the attempt is abandoned, and whoever holds the lock now observes it.
    if (!live()) throw lostLease(leaseSignal);
    if (!verified.ok) await record('failed', verified.version, `verification failed: ${verified.detail}`);
    return decideExecution({ fencingToken, result, verified });
  } catch (thrown) {
    // The action may or may not have taken effect: record that this attempt ended without an answer.
    const error = ctx.shutdown.aborted ? shuttingDown(thrown) : leaseSignal.aborted ? (leaseSignal.reason as Error) : thrown;
    if (error instanceof ArbiterError && error.code === 'FENCED') {
      ctx.metrics.fencedWrites.inc();
      await ctx.locks.recordFenced(request.resourceArn, owner, request.agentId, fencingToken, error.message).catch(() => {});
    }
    await record('abandoned', null, errorMessage(error)).catch(() => {});
    throw error;
  } finally {
    ctx.metrics.executionsRunning.dec();
  }
}

/**
 * Another owner recorded the final decision (it answered the request itself): this partition
 * forgets the request, and answers the followers that merged into it here with that result.
 */
async function settleDecidedElsewhere(ctx: PipelineContext, part: Partition, entry: PendingRequest): Promise<StepResult> {
  const decided = (await ctx.audit.finalDecisions([entry.request.requestId])).get(entry.request.requestId);
  ctx.log.warn({ requestId: entry.request.requestId, status: decided?.status }, 'decided by another owner; not run here');
  if (!decided) return 'deferred';
  const now = Date.now();
  const followers = await withSpilledFollowers(ctx, part, entry, decided, part.settle(entry, decided, now));
  if (followers) await ctx.publisher.publish(followers.map((a) => toOutcome(a.request, a.scope, a.decision, ctx.workerId, now)));
  return 'done';
}

/**
 * A primary whose followers waited in PostgreSQL only (its partition held too many in memory): they
 * are read back to be answered with it. If that read fails, nothing is published and the outbox
 * flag stays unset: the sweep publishes the primary's answer with every follower's.
 */
async function withSpilledFollowers(ctx: PipelineContext, part: Partition, entry: PendingRequest, decision: FinalDecision, held: Answer[]): Promise<Answer[] | null> {
  if (!entry.spilled) return held;
  try {
    const stored = await ctx.audit.inFlightFollowers(entry.request.requestId, part.partition, entry.spilled.through);
    return [...held, ...stored.map((f) => ({ ...f, decision: followerDecision(entry.request.requestId, decision) }))];
  } catch (error) {
    ctx.log.warn({ err: error, requestId: entry.request.requestId }, 'reading back the followers that waited in PostgreSQL failed; the outbox sweep answers them');
    return null;
  }
}

/** Applies a decision exactly once: durable write, then the partition's memory, then publish. */
async function apply(ctx: PipelineContext, part: Partition, entry: PendingRequest, decision: Decision): Promise<StepResult> {
  const { request, scope } = entry;
  const now = Date.now();
  if (decision.status === 'DEFERRED') {
    // The plan that makes the precondition hold; idempotent by its derived id, so a crash between
    // making it and recording the deferral makes it once.
    if (decision.expand) await ctx.plans.create({ ...decision.expand, incidentId: request.incidentId }, now);
    const firstTime = entry.deferredSince === null || entry.deferRule !== decision.rule;
    if (firstTime && (await ctx.audit.recordProgress({ request, scope, decision, latencyMs: now - entry.receivedAt }))) {
      ctx.metrics.deferrals.inc({ reason: decision.rule });
      ctx.metrics.countDecision('DEFERRED', request.action);
      await ctx.publisher.publish([toOutcome(request, scope, decision, ctx.workerId, now)]);
    }
    entry.deferredSince ??= now;
    entry.deferRule = decision.rule;
    entry.deferDetail = decision.detail;
    entry.retryAt = decision.retryAt ?? 0;
    entry.observeFirst ||= decision.observeFirst === true;
    return 'deferred';
  }
  if (!isFinal(decision)) throw new Error(`a ${decision.status} decision cannot be made at the head of a queue`);
  const recorded = await ctx.audit.finalize({
    decided: { request, scope, decision, latencyMs: now - entry.receivedAt },
    execution: executionEnd(entry, decision),
    resource:
      decision.status === 'EXECUTED'
        ? {
            arn: request.resourceArn,
            scope,
            version: decision.resourceVersion,
            expectedState: { action: request.action, params: request.params, version: decision.resourceVersion },
            requestId: request.requestId,
            action: request.action,
            agentId: request.agentId,
          }
        : undefined,
    release: entry.heldLease ?? undefined,
  });
  entry.heldLease = null;
  const held = part.settle(entry, decision, now);
  if (!recorded) {
    // Another owner recorded this request's final decision first (it took over the partition): it
    // answers the request and its followers; a second answer here could contradict it.
    ctx.log.warn({ requestId: request.requestId }, 'final decision already recorded by another owner; not answering again');
    return 'done';
  }
  ctx.metrics.countDecision(decision.status, request.action);
  const followers = await withSpilledFollowers(ctx, part, entry, decision, held);
  if (!followers) return 'done';
  const answers: Answer[] = [{ request, scope, decision }, ...followers];
  await ctx.publisher.publish(answers.map((a) => toOutcome(a.request, a.scope, a.decision, ctx.workerId, now)));
  return 'done';
}

/** The execution phase a final decision closes: succeeded, or recovered when found applied before taking the lock. */
function executionEnd(entry: PendingRequest, decision: FinalDecision): ExecutionRow | undefined {
  if (decision.status !== 'EXECUTED') return undefined;
  const base = { ...executionBase(entry), resourceVersion: decision.resourceVersion, detail: decision.detail };
  if (decision.rule === 'execute') return { ...base, phase: 'succeeded', fencingToken: decision.fencingToken ?? null };
  // Found applied under the lock: execute() recorded it already, with the lease's token.
  if (decision.fencingToken != null) return undefined;
  return { ...base, phase: 'recovered', fencingToken: null, detail: 'found applied after the previous owner died' };
}

/** Records a change made behind Arbiter's back: the resource moved since Arbiter's last committed version. */
function noticeOutsideChanges(ctx: PipelineContext, part: Partition, entry: PendingRequest, observed: Observation): void {
  const known = part.noteObservedVersion(observed.arn, observed.version);
  if (known === undefined || known === observed.version) return;
  ctx.metrics.inconsistencies.inc({ kind: 'unexpected_version' });
  void ctx.audit
    .recordInconsistency({
      resourceArn: observed.arn,
      scope: entry.scope,
      kind: 'unexpected_version',
      expected: { version: known },
      observed: { version: observed.version, state: observed.state },
      requestIds: [entry.request.requestId],
      detail: `Arbiter last committed version ${known}; observed version ${observed.version}`,
    })
    .catch((error) => ctx.log.warn({ err: error }, 'recording an inconsistency failed'));
}

function headRules(ctx: PipelineContext): HeadRules {
  const { config } = ctx;
  return {
    maxDeferMs: config.deferral.maxDeferMs,
    clockSkewToleranceMs: config.clockSkewToleranceMs,
    conflicts: config.conflicts,
    budget: { rules: config.compiled.budget, defaultMinAvailable: config.budget.defaultMinAvailable, onBreach: config.budget.onBreach },
    preconditions: { terminateUndrained: config.preconditions.terminateUndrained, defaultPlanDeadlineMs: config.plans.defaultDeadlineMs },
  };
}

function retryPolicy(ctx: PipelineContext): RetryPolicy {
  return { ...ctx.config.retries, lockRetryMs: ctx.config.locks.retryMs };
}

function asArbiterError(error: unknown): unknown {
  if (isConnectionError(error)) return new ArbiterError('DATABASE_UNAVAILABLE', `database: ${errorMessage(error)}`, { cause: error });
  if (isPoolExhausted(error)) return new ArbiterError('DATABASE_BUSY', `database: every pooled connection stayed busy: ${errorMessage(error)}`, { cause: error });
  return error;
}

function lostLease(signal: AbortSignal): ArbiterError {
  return signal.reason instanceof ArbiterError ? signal.reason : new ArbiterError('LOCK_LOST', 'the lease ran out before the action was answered');
}

function shuttingDown(cause: unknown): ArbiterError {
  return new ArbiterError('SHUTTING_DOWN', 'the worker is shutting down', { cause });
}

/** Who holds a lease this worker takes, in the lock table and its log. */
function leaseOwner(ctx: PipelineContext): string {
  return `worker:${ctx.workerId}`;
}

function executionBase(entry: PendingRequest) {
  const { request } = entry;
  return { requestId: request.requestId, resourceArn: request.resourceArn, scope: entry.scope, action: request.action, agentId: request.agentId };
}
