import { describe, expect, it } from 'vitest';
import { buildRequest, type RemediationRequest } from '../../src/contract/request.ts';
import type { FinalDecision } from '../../src/contract/decision.ts';
import { coalesceKey } from '../../src/coalesce/index.ts';
import { decideArrival, type ArrivalRules } from '../../src/decide/index.ts';
import { compilePolicy, compileScopeRules, DEFAULT_SCOPE_RULES } from '../../src/routing/index.ts';
import { ACTIONS, type ActionName } from '../../src/contract/actions.ts';
import { Partition, type DurableArrival } from '../../src/worker/partition.ts';
import type { PendingRequest } from '../../src/worker/pending.ts';
import type { Clock } from '../../src/worker/clock.ts';

const DEPLOYMENT = 'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/payments/deployment/api';
const POD = `${DEPLOYMENT}/pod/api-1`;
const NOW = 1_800_000_000_000;

const rules: ArrivalRules = {
  scopes: compileScopeRules([...DEFAULT_SCOPE_RULES]),
  policy: compilePolicy({ defaultEffect: 'allow', rules: [], reservedTypes: {} }),
  limits: { maxParams: 8, maxParamBytes: 1_024, maxDependsOn: 8, maxIdLength: 64, maxReasonBytes: 256 },
  actions: Object.fromEntries(ACTIONS.map((a) => [a, { coalesceWindowMs: 30_000, waitForDuplicates: false }])) as Record<
    ActionName,
    { coalesceWindowMs: number; waitForDuplicates: boolean }
  >,
  clockSkewToleranceMs: 0,
};

/** A clock that never fires: the queues are driven by hand through `heads`. */
const stillClock: Clock = { now: () => NOW, sleep: () => new Promise(() => undefined) };

/** A partition whose head runner parks each entry until the test settles it. */
function partition(maxWaitingFollowers?: number) {
  const heads: PendingRequest[] = [];
  const part = new Partition({
    maxWaitingFollowers,
    partition: 0,
    partitions: 1,
    windowMs: () => 30_000,
    historyMs: 300_000,
    recheckMs: 100,
    clock: stillClock,
    runHead: async (_p, entry) => {
      heads.push(entry);
      return new Promise(() => undefined); // stays "running" for the test's lifetime
    },
  });
  return { part, heads };
}

function decideChunk(part: Partition, requests: RemediationRequest[]) {
  const chunk = part.beginChunk(NOW);
  const arrivals: DurableArrival[] = requests.map((request) => {
    const arrival = decideArrival(request, DEPLOYMENT, chunk.view, rules, NOW);
    chunk.note(request.requestId, arrival.coalesceKey, arrival.decision);
    return { request, ...arrival, receivedAt: NOW };
  });
  return { chunk, arrivals };
}

const restart = (agentId: string) => buildRequest({ agentId, resourceArn: POD, action: 'restart' }, NOW);
const executed: FinalDecision = { status: 'EXECUTED', rule: 'execute', resourceVersion: 2, fencingToken: 5, detail: 'restarted' };

describe('Partition', () => {
  it('merges a duplicate into a primary accepted earlier in the same chunk, before either is durable', () => {
    const { part } = partition();
    const [a, b] = [restart('agent-a'), restart('agent-b')];
    const { arrivals } = decideChunk(part, [a, b]);
    expect(arrivals.map((x) => x.decision.status)).toEqual(['ACCEPTED', 'COALESCED']);
    expect(arrivals[1]!.decision.primaryRequestId).toBe(a.requestId);
    // Nothing changed in memory yet: a second look at the same key still sees no primary.
    expect(part.beginChunk(NOW).view.coalesceMatch(coalesceKey(POD, 'restart', {}))).toBeUndefined();
    expect(part.pendingCount).toBe(0);
  });

  it('applies a durable chunk: the primary is queued, the follower answered with the primary’s result once it settles', async () => {
    const { part, heads } = partition();
    const [a, b] = [restart('agent-a'), restart('agent-b')];
    const { chunk, arrivals } = decideChunk(part, [a, b]);
    expect(part.accept(chunk, arrivals)).toEqual([]);
    expect(part.pendingCount).toBe(1);
    await Promise.resolve();
    expect(heads.map((h) => h.request.requestId)).toEqual([a.requestId]);
    const answers = part.settle(heads[0]!, executed, NOW + 1_000);
    expect(answers.map((x) => [x.request.requestId, x.decision.status, x.decision.primaryRequestId])).toEqual([[b.requestId, 'COALESCED', a.requestId]]);
    expect(part.pendingCount).toBe(0);
    // Within the window, a later duplicate gets the finished result at once.
    const later = decideChunk(part, [restart('agent-c')]);
    expect(later.arrivals[0]!.decision).toMatchObject({ status: 'COALESCED', primaryRequestId: a.requestId, resourceVersion: 2 });
  });

  it('a follower waiting in flight keeps only what its answer needs, sharing its primary’s ARN and action', async () => {
    const { part, heads } = partition();
    const a = restart('agent-a');
    // A duplicate decoded separately: equal strings, not the same ones, and a reason of its own.
    const b = { ...buildRequest({ agentId: 'agent-b', resourceArn: POD, action: 'restart', reason: 'r'.repeat(200) }, NOW), resourceArn: `${POD}`.slice(0) };
    const { chunk, arrivals } = decideChunk(part, [a, b]);
    part.accept(chunk, arrivals);
    await Promise.resolve();
    const [kept] = heads[0]!.followers.toArray();
    expect(Object.keys(kept!.request).sort()).toEqual(['action', 'agentId', 'requestId', 'requestedAt', 'resourceArn']);
    expect(kept!.request).toEqual({ requestId: b.requestId, agentId: 'agent-b', requestedAt: b.requestedAt, resourceArn: POD, action: 'restart' });
    expect(kept!.scope).toBe(heads[0]!.scope);
  });

  it('answers a follower whose primary settled while the follower’s chunk was being written', async () => {
    const { part, heads } = partition();
    const a = restart('agent-a');
    const first = decideChunk(part, [a]);
    part.accept(first.chunk, first.arrivals);
    await Promise.resolve();

    const b = restart('agent-b');
    const second = decideChunk(part, [b]); // merged in flight…
    expect(second.arrivals[0]!.decision).toMatchObject({ status: 'COALESCED', inFlight: true });
    part.settle(heads[0]!, executed, NOW + 500); // …then the primary finishes before the chunk is durable
    const answers = part.accept(second.chunk, second.arrivals);
    expect(answers).toHaveLength(1);
    expect(answers[0]!.decision.detail).toContain('which ended EXECUTED');
  });

  it('a failed primary does not absorb later duplicates: the next one runs', async () => {
    const { part, heads } = partition();
    const first = decideChunk(part, [restart('agent-a')]);
    part.accept(first.chunk, first.arrivals);
    await Promise.resolve();
    part.settle(heads[0]!, { status: 'FAILED', rule: 'execute', detail: 'no' }, NOW);
    expect(decideChunk(part, [restart('agent-b')]).arrivals[0]!.decision.status).toBe('ACCEPTED');
  });

  it('beyond its budget of followers in memory, a primary spills: it drops those it held and is read back up to the offset accepted when it ends', async () => {
    const { part, heads } = partition(2);
    const first = decideChunk(part, [restart('agent-a')]);
    part.accept(first.chunk, first.arrivals, '10');
    await Promise.resolve();
    const [a] = heads;
    // Two followers fill the budget; a third makes the primary spill.
    const second = decideChunk(part, [restart('agent-b'), restart('agent-c')]);
    expect(part.accept(second.chunk, second.arrivals, '12')).toEqual([]);
    expect(a!.followers.map((f) => f.request.agentId)).toEqual(['agent-b', 'agent-c']);
    expect(part.followersInMemory).toBe(2);
    const third = decideChunk(part, [restart('agent-d')]);
    part.accept(third.chunk, third.arrivals, '13');
    expect(a!.spilled).toEqual({ through: null });
    expect(a!.followers.toArray()).toEqual([]);
    expect(part.followersInMemory).toBe(0);
    // Later followers of a spilled primary are not held either, though the budget is free.
    const fourth = decideChunk(part, [restart('agent-e')]);
    part.accept(fourth.chunk, fourth.arrivals, '14');
    expect(a!.followers.toArray()).toEqual([]);
    // It ends: nothing held to answer here; the caller reads back its followers through offset 14.
    expect(part.settle(a!, executed, NOW + 1_000)).toEqual([]);
    expect(a!.spilled).toEqual({ through: '14' });
    // A duplicate accepted after the end is answered on arrival (the window), past the offset read back.
    const fifth = decideChunk(part, [restart('agent-f')]);
    expect(fifth.arrivals[0]!.decision).toMatchObject({ status: 'COALESCED', resourceVersion: 2 });
    expect(part.accept(fifth.chunk, fifth.arrivals, '15')).toEqual([]);
    expect(part.followersInMemory).toBe(0);
  });
});
