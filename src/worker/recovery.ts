import { followerDecision, toOutcome, type FinalDecision } from '../contract/decision.ts';
import type { PipelineContext } from './context.ts';
import type { Partition } from './partition.ts';

/**
 * Loads what Postgres holds for a partition this worker was just given and hands it to the
 * Partition to rebuild from: recently executed primaries, open requests (flagging those a previous
 * owner died while executing), and the answers never published, which are published now.
 */
export async function recoverPartition(ctx: PipelineContext, topic: string, part: Partition): Promise<{ pending: number; republished: number }> {
  const p = part.partition;
  const now = Date.now();
  const longestWindow = Math.max(ctx.config.conflicts.windowMs, ...Object.values(ctx.config.actions).map((a) => a.coalesceWindowMs));
  const recent = await ctx.audit.loadRecentlyExecuted(topic, [p], longestWindow);
  const open = await ctx.audit.loadOpen(topic, [p]);
  const openIds = new Set(open.filter((o) => !o.decision).map((o) => o.request.requestId));
  const primaryIds = open.flatMap((o) =>
    o.decision?.status === 'COALESCED' && !openIds.has(o.decision.primaryRequestId) ? [o.decision.primaryRequestId] : [],
  );
  const primaries = await ctx.audit.finalDecisions([...new Set(primaryIds)]);
  const answers = part.recover(recent, open, primaries, now);
  await ctx.publisher.publish(answers.map((a) => toOutcome(a.request, a.scope, a.decision, ctx.workerId, now)));
  return { pending: openIds.size, republished: answers.length };
}

const SWEEP_LIMIT = 1_000;

/**
 * The outbox sweep: publishes final outcomes of a partition this worker owns that are still
 * unpublished after `worker.outboxSweepMs` (a publish failed while Kafka was away, or the
 * in-memory backlog overflowed). Followers get their primary's result. Returns how many it published.
 */
export async function sweepOutbox(ctx: PipelineContext, topic: string, part: Partition): Promise<number> {
  const rows = await ctx.audit.loadUnpublished(topic, part.partition, ctx.config.worker.outboxSweepMs, SWEEP_LIMIT);
  if (!rows.length) return 0;
  const primaryIds = rows.flatMap((r) => (r.decision?.status === 'COALESCED' ? [r.decision.primaryRequestId] : []));
  const primaries = await ctx.audit.finalDecisions([...new Set(primaryIds)]);
  const now = Date.now();
  const outcomes = rows.flatMap((r) => {
    const decision = r.decision!;
    const answer: FinalDecision | undefined =
      decision.status === 'COALESCED' ? (primaries.has(decision.primaryRequestId) ? followerDecision(decision.primaryRequestId, primaries.get(decision.primaryRequestId)!) : undefined) : decision;
    return answer ? [toOutcome(r.request, r.scope, answer, ctx.workerId, now)] : [];
  });
  await ctx.publisher.publish(outcomes);
  return outcomes.length;
}
