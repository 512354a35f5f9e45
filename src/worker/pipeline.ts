import { DISRUPTIVE_ACTIONS, type ActionName } from '../contract/actions.ts';
import { ArbiterError, errorMessage } from '../contract/errors.ts';
import type { FinalStatus } from '../contract/outcome.ts';
import { checkBudget, checkConflict, checkStale, resolveMinAvailable } from '../decide/index.ts';
import type { Observation } from '../executor/index.ts';
import { withLease } from '../locks/index.ts';
import { tryParseArn } from '../routing/index.ts';
import type { PipelineContext } from './context.ts';
import { buildOutcome, decisionRow, followerFields, type OutcomeFields } from './outcomes.ts';
import type { PartitionState } from './partition-state.ts';
import type { PendingRequest } from './pending.ts';
import type { StepResult } from './scope-queue.ts';

/**
 * Steps 4-10 of the decision pipeline for the request at the head of its scope's queue: deadline,
 * dependencies, observe, stale, conflict, budget, lock, execute, verify, record, publish. These run
 * at the head of the queue, not on arrival, because only then is the resource's version current.
 */
export async function runPending(ctx: PipelineContext, part: PartitionState, entry: PendingRequest): Promise<StepResult> {
  const { request } = entry;
  const now = Date.now();
  const log = ctx.log.child({ requestId: request.requestId, scope: entry.scope });

  const giveUpAt = Math.min(
    request.deadline ?? Number.POSITIVE_INFINITY,
    entry.deferredSince === null ? Number.POSITIVE_INFINITY : entry.deferredSince + ctx.config.deferral.maxDeferMs,
  );
  if (now >= giveUpAt) {
    const status: FinalStatus = entry.deferKind === 'budget' ? 'REJECTED_BUDGET' : 'EXPIRED';
    const detail = entry.deferReason ? `gave up waiting: ${entry.deferReason}` : 'deadline passed before the request could run';
    return finish(ctx, part, entry, { status, final: true, detail });
  }

  if (request.dependsOn.length) {
    const statuses = await ctx.audit.dependencyStatus(request.dependsOn);
    for (const id of request.dependsOn) {
      const dep = statuses.get(id);
      if (!dep || !dep.final) return defer(ctx, entry, 'dependencies', `waiting for request ${id} to complete`);
      const effective = dep.status === 'COALESCED' ? dep.primaryStatus : dep.status;
      if (effective !== 'EXECUTED') {
        return finish(ctx, part, entry, { status: 'FAILED', final: true, detail: `dependency ${id} ended ${effective ?? dep.status}` });
      }
    }
  }

  let observed: Observation;
  try {
    observed = await ctx.executor.observe(request.resourceArn);
  } catch (error) {
    return defer(ctx, entry, 'executor', `cannot observe the resource: ${errorMessage(error)}`);
  }
  if (!observed.exists) {
    return finish(ctx, part, entry, { status: 'REJECTED_INVALID', final: true, detail: 'the executor does not know this resource' });
  }

  if (entry.recovering) {
    // A previous owner died mid-action. Never run a non-idempotent action twice: look first.
    if (observed.appliedRequestIds.includes(request.requestId)) {
      await ctx.audit.recordExecution({ ...executionBase(entry), phase: 'recovered', fencingToken: null, resourceVersion: observed.version, detail: 'found applied after the previous owner died' });
      return finishExecuted(ctx, part, entry, observed.version, null, 'executed by a previous owner; verified by observation');
    }
    if (observed.inProgressRequestIds.includes(request.requestId)) {
      return defer(ctx, entry, 'in-progress', 'a previous owner started this action; waiting for it to finish');
    }
    entry.recovering = false;
  }

  noticeOutsideChanges(ctx, part, entry, observed);

  const stale = checkStale(request, observed.version);
  if (stale) return finish(ctx, part, entry, { status: 'REJECTED_STALE', final: true, detail: stale, resourceVersion: observed.version });

  const conflict = checkConflict(
    { agentId: request.agentId, action: request.action, expectedVersion: request.expectedVersion },
    part.memory.recentChanges(request.resourceArn, now),
    ctx.config.conflicts,
    now,
  );
  if (conflict) return finish(ctx, part, entry, { status: 'REJECTED_CONFLICT', final: true, detail: conflict, resourceVersion: observed.version });

  if (DISRUPTIVE_ACTIONS.has(request.action as ActionName) && observed.workload) {
    const breach = budgetBreach(ctx, observed);
    if (breach) {
      if (ctx.config.budget.onBreach === 'reject') {
        return finish(ctx, part, entry, { status: 'REJECTED_BUDGET', final: true, detail: breach, resourceVersion: observed.version });
      }
      return defer(ctx, entry, 'budget', breach);
    }
  }

  return execute(ctx, part, entry, log);
}

function budgetBreach(ctx: PipelineContext, observed: Observation): string | null {
  const workload = observed.workload!;
  const rule = ctx.config.budget.workloads.find((w) => new RegExp(`^(?:${w.match})$`).test(workload.arn));
  const minAvailable = rule
    ? resolveMinAvailable(rule.minAvailable, workload.desired)
    : Math.max(workload.minAvailable, 0) || resolveMinAvailable(ctx.config.budget.defaultMinAvailable, workload.desired);
  // A replica that is already down does not cost the budget anything more.
  const alreadyDown = observed.kind === 'pod' && observed.state.ready === false;
  return checkBudget({ desired: workload.desired, available: workload.available, minAvailable }, alreadyDown ? 0 : 1);
}

function noticeOutsideChanges(ctx: PipelineContext, part: PartitionState, entry: PendingRequest, observed: Observation): void {
  const known = part.memory.knownVersion(observed.arn);
  part.memory.setVersion(observed.arn, observed.version);
  if (known === undefined || known === observed.version) return;
  // The resource changed since Arbiter's last committed change: someone acted behind its back.
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

async function execute(
  ctx: PipelineContext,
  part: PartitionState,
  entry: PendingRequest,
  log: PipelineContext['log'],
): Promise<StepResult> {
  const { request } = entry;
  const owner = `worker:${ctx.workerId}`;
  const settings = ctx.config.actions[request.action as ActionName];
  // The token of the lease held when the executor answered, for recording a write it fenced off.
  let fencingToken: number | null = null;
  try {
    return await withLease(
      ctx.locks,
      { resourceArn: request.resourceArn, owner, agentId: request.agentId, ttlMs: ctx.config.locks.ttlMs, renewEveryMs: ctx.config.locks.renewEveryMs },
      async (lease) => {
        fencingToken = lease.fencingToken;
        if (entry.fromRecovery) {
          // Under the lock nobody else can be acting: if the previous owner ran it, it shows now.
          const seen = await ctx.executor.observe(request.resourceArn, lease.signal);
          if (seen.appliedRequestIds.includes(request.requestId)) {
            await ctx.audit.recordExecution({ ...executionBase(entry), phase: 'recovered', fencingToken: lease.fencingToken, resourceVersion: seen.version, detail: 'found applied under the lock after a partition move' });
            return finishExecuted(ctx, part, entry, seen.version, null, 'executed by a previous owner; verified by observation');
          }
          if (seen.inProgressRequestIds.includes(request.requestId)) {
            return defer(ctx, entry, 'in-progress', 'a previous owner is still running this action');
          }
        }
        const started = Date.now();
        await ctx.audit.recordExecution({ ...executionBase(entry), phase: 'started', fencingToken: lease.fencingToken, resourceVersion: null, detail: null });
        ctx.metrics.executionsRunning.inc();
        const input = {
          requestId: request.requestId,
          agentId: request.agentId,
          arn: request.resourceArn,
          action: request.action,
          params: request.params,
          fencingToken: lease.fencingToken,
          signal: AbortSignal.any([lease.signal, AbortSignal.timeout(settings.timeoutMs)]),
        };
        try {
          const result = await ctx.executor.execute(input);
          if (!result.ok) {
            await ctx.audit.recordExecution({ ...executionBase(entry), phase: 'failed', fencingToken: lease.fencingToken, resourceVersion: null, detail: result.detail });
            return finish(ctx, part, entry, { status: 'FAILED', final: true, detail: `${result.code ?? 'failed'}: ${result.detail}`, fencingToken: lease.fencingToken });
          }
          const verified = await ctx.executor.verify(input, result);
          ctx.metrics.executionLatency.observe({ action: request.action }, (Date.now() - started) / 1000);
          if (!verified.ok) {
            await ctx.audit.recordExecution({ ...executionBase(entry), phase: 'failed', fencingToken: lease.fencingToken, resourceVersion: verified.version, detail: `verification failed: ${verified.detail}` });
            return finish(ctx, part, entry, { status: 'FAILED', final: true, detail: `verification failed: ${verified.detail}`, fencingToken: lease.fencingToken, resourceVersion: verified.version });
          }
          return finishExecuted(ctx, part, entry, verified.version, lease.fencingToken, result.detail);
        } finally {
          ctx.metrics.executionsRunning.dec();
        }
      },
    );
  } catch (error) {
    if (error instanceof ArbiterError && error.code === 'LOCK_HELD') {
      ctx.metrics.lockAcquireFailures.inc({ resource_type: resourceType(request.resourceArn), agent: request.agentId });
      return defer(ctx, entry, 'lock', error.message);
    }
    if (error instanceof ArbiterError && error.code === 'FENCED') {
      ctx.metrics.fencedWrites.inc();
      await ctx.locks.recordFenced(request.resourceArn, owner, request.agentId, fencingToken ?? -1, error.message).catch(() => {});
      await ctx.audit.recordExecution({ ...executionBase(entry), phase: 'abandoned', fencingToken, resourceVersion: null, detail: error.message });
      return defer(ctx, entry, 'lock', `fenced off: ${error.message}`);
    }
    if (error instanceof ArbiterError && error.retryable) {
      // The executor could not be reached: the action may or may not have started. Observe before retrying.
      entry.recovering = true;
      return defer(ctx, entry, 'executor', error.message);
    }
    log.error({ err: error }, 'execution failed');
    await ctx.audit
      .recordExecution({ ...executionBase(entry), phase: 'failed', fencingToken: null, resourceVersion: null, detail: errorMessage(error) })
      .catch(() => {});
    return finish(ctx, part, entry, { status: 'FAILED', final: true, detail: errorMessage(error) });
  }
}

function resourceType(arn: string): string {
  const parsed = tryParseArn(arn);
  return parsed.ok ? parsed.arn.resourceType : 'unknown';
}

function executionBase(entry: PendingRequest) {
  const { request } = entry;
  return { requestId: request.requestId, resourceArn: request.resourceArn, scope: entry.scope, action: request.action, agentId: request.agentId };
}

async function finishExecuted(
  ctx: PipelineContext,
  part: PartitionState,
  entry: PendingRequest,
  version: number,
  fencingToken: number | null,
  detail: string,
): Promise<StepResult> {
  const { request } = entry;
  part.memory.recordChange(request.resourceArn, {
    requestId: request.requestId,
    agentId: request.agentId,
    action: request.action,
    at: Date.now(),
    resourceVersion: version,
  });
  return finish(ctx, part, entry, { status: 'EXECUTED', final: true, resourceVersion: version, fencingToken, detail }, {
    arn: request.resourceArn,
    scope: entry.scope,
    version,
    expectedState: { action: request.action, params: request.params, version },
    requestId: request.requestId,
    action: request.action,
    agentId: request.agentId,
  }, fencingToken);
}

async function defer(ctx: PipelineContext, entry: PendingRequest, kind: NonNullable<PendingRequest['deferKind']>, reason: string): Promise<StepResult> {
  const firstTime = entry.deferredSince === null || entry.deferKind !== kind;
  entry.deferredSince ??= Date.now();
  entry.deferKind = kind;
  entry.deferReason = reason;
  entry.attempts++;
  if (kind === 'lock' || kind === 'executor') entry.retryAt = Date.now() + ctx.config.locks.retryMs;
  if (firstTime) {
    ctx.metrics.deferrals.inc({ reason: kind });
    ctx.metrics.decisions.inc({ status: 'DEFERRED', action: entry.request.action });
    const fields: OutcomeFields = { status: 'DEFERRED', final: false, detail: reason };
    await ctx.audit.recordProgress(decisionRow(entry.request, entry.scope, fields));
    await ctx.publisher.publish([buildOutcome(entry.request, entry.scope, fields, ctx.workerId)]);
  }
  return 'deferred';
}

/** Records the primary's final decision (once, even if a zombie owner races), then tells it and its followers. */
async function finish(
  ctx: PipelineContext,
  part: PartitionState,
  entry: PendingRequest,
  fields: OutcomeFields,
  resource?: Parameters<PipelineContext['audit']['finalize']>[0]['resource'],
  fencingToken: number | null = null,
): Promise<StepResult> {
  const { request } = entry;
  const now = Date.now();
  const recorded = await ctx.audit.finalize({
    decisions: [decisionRow(request, entry.scope, { ...fields, latencyMs: now - entry.receivedAt })],
    execution:
      fields.status === 'EXECUTED' && fencingToken !== null
        ? { ...executionBase(entry), phase: 'succeeded', fencingToken, resourceVersion: fields.resourceVersion ?? null, detail: fields.detail ?? null }
        : undefined,
    resource,
  });
  part.coalescer.finish(entry.coalesceKey, request.requestId, {
    status: fields.status,
    resourceVersion: fields.resourceVersion ?? null,
    fencingToken: fields.fencingToken ?? null,
    detail: fields.detail ?? null,
  }, now);
  if (recorded) ctx.metrics.decisions.inc({ status: fields.status, action: request.action });
  // Synchronously with reading the followers: a follower attached later sees `finished` instead.
  entry.finished = fields;
  const outcomes = [
    ...(recorded ? [buildOutcome(request, entry.scope, fields, ctx.workerId, now)] : []),
    ...entry.followers.map((f) => buildOutcome(f.request, f.scope, followerFields(request.requestId, fields), ctx.workerId, now)),
  ];
  await ctx.publisher.publish(outcomes);
  return 'done';
}
