import type { ActionName } from '../contract/actions.ts';
import type { OutcomeStatus } from '../contract/outcome.ts';
import type { OpenRequest } from '../audit/index.ts';
import type { PipelineContext } from './context.ts';
import { buildOutcome, followerFields } from './outcomes.ts';
import type { PartitionState } from './partition-state.ts';
import { newPending, type PendingRequest } from './pending.ts';

/**
 * Rebuilds a partition's state from Postgres when this worker is given the partition: coalescing
 * windows and conflict history from recent executions, pending requests back into their queues
 * (flagging those a previous owner died while executing), and outcomes never published.
 */
export async function recoverPartition(ctx: PipelineContext, topic: string, state: PartitionState): Promise<{ pending: number; republished: number }> {
  const p = state.partition;
  const now = Date.now();
  const longestWindow = Math.max(ctx.config.conflicts.windowMs, ...Object.values(ctx.config.actions).map((a) => a.coalesceWindowMs));

  for (const done of await ctx.audit.loadRecentlyExecuted(topic, [p], now - longestWindow)) {
    const finishedAt = rememberFinished(ctx, state, done, now);
    state.memory.recordChange(done.request.resourceArn, {
      requestId: done.request.requestId,
      agentId: done.request.agentId,
      action: done.request.action,
      at: finishedAt,
      resourceVersion: done.resourceVersion,
    });
  }

  const open = await ctx.audit.loadOpen(topic, [p]);
  const entries = new Map<string, PendingRequest>();
  for (const o of open.filter((o) => !o.final)) {
    const entry = newPending(o.request, o.scope, p, o.coalesceKey, o.receivedAt);
    entry.recovering = o.executionStarted;
    entry.fromRecovery = true;
    if (o.status === 'DEFERRED') entry.deferredSince = o.receivedAt;
    entries.set(o.request.requestId, entry);
    state.coalescer.startPrimary(o.coalesceKey, o.request.requestId, ctx.config.actions[o.request.action as ActionName]?.coalesceWindowMs ?? 0);
  }

  const unpublished = open.filter((o) => o.final);
  const primaryIds = unpublished.flatMap((o) => (o.status === 'COALESCED' && o.primaryRequestId && !entries.has(o.primaryRequestId) ? [o.primaryRequestId] : []));
  const primaries = await ctx.audit.finalStates([...new Set(primaryIds)]);
  const outcomes = [];
  for (const o of unpublished) {
    const pending = o.primaryRequestId ? entries.get(o.primaryRequestId) : undefined;
    if (o.status === 'COALESCED' && pending) {
      pending.followers.push({ request: o.request, scope: o.scope });
      continue;
    }
    const primary = o.status === 'COALESCED' && o.primaryRequestId ? primaries.get(o.primaryRequestId) : undefined;
    const fields = primary
      ? followerFields(o.primaryRequestId!, { ...primary, status: primary.status as OutcomeStatus, final: true })
      : { status: o.status as OutcomeStatus, final: true, primaryRequestId: o.primaryRequestId, resourceVersion: o.resourceVersion, fencingToken: o.fencingToken, detail: o.detail };
    outcomes.push(buildOutcome(o.request, o.scope, fields, ctx.workerId, now));
  }

  for (const entry of entries.values()) state.enqueue(entry);
  await ctx.publisher.publish(outcomes);
  return { pending: entries.size, republished: outcomes.length };
}

/**
 * Records that are redelivered after a partition moved may have been decided by the previous
 * owner *after* this worker rebuilt the partition's state (its last batch committed to Postgres
 * while its offset commit was refused). They are not decided again — but this worker must know of
 * them: an accepted request is taken into its queue, an executed one into the coalescing window,
 * or a duplicate arriving next would run a second time.
 */
export async function adoptDecidedElsewhere(ctx: PipelineContext, state: PartitionState, ids: string[]): Promise<number> {
  const strangers = ids.filter((id) => !state.primaries.has(id));
  if (!strangers.length) return 0;
  const now = Date.now();
  let adopted = 0;
  for (const row of await ctx.audit.loadByIds(strangers)) {
    const window = ctx.config.actions[row.request.action as ActionName]?.coalesceWindowMs ?? 0;
    if (!row.final) {
      const entry = newPending(row.request, row.scope, state.partition, row.coalesceKey, row.receivedAt);
      entry.recovering = row.executionStarted;
      entry.fromRecovery = true;
      if (!state.coalescer.match(row.coalesceKey, now)) state.coalescer.startPrimary(row.coalesceKey, row.request.requestId, window);
      state.enqueue(entry);
      adopted++;
    } else if (row.status === 'EXECUTED' && !state.coalescer.match(row.coalesceKey, now)) {
      rememberFinished(ctx, state, row, now);
      adopted++;
    } else if (row.status === 'COALESCED' && !row.outcomePublished && row.primaryRequestId) {
      const primary = state.primaries.get(row.primaryRequestId);
      if (primary && !primary.followers.some((f) => f.request.requestId === row.request.requestId)) {
        primary.followers.push({ request: row.request, scope: row.scope });
        adopted++;
      }
    }
  }
  return adopted;
}

/** Puts a finished primary back into the coalescing window it finished in; returns when it finished. */
function rememberFinished(ctx: PipelineContext, state: PartitionState, done: OpenRequest, now: number): number {
  const window = ctx.config.actions[done.request.action as ActionName]?.coalesceWindowMs ?? 0;
  const finishedAt = done.finishedAt ?? now;
  state.coalescer.startPrimary(done.coalesceKey, done.request.requestId, window);
  state.coalescer.finish(done.coalesceKey, done.request.requestId, {
    status: done.status,
    resourceVersion: done.resourceVersion,
    fencingToken: done.fencingToken,
    detail: done.detail,
  }, finishedAt);
  return finishedAt;
}
