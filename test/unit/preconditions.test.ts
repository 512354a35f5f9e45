import { describe, expect, it } from 'vitest';
import type { Observation } from '../../src/contract/observation.ts';
import { buildRequest } from '../../src/contract/request.ts';
import { checkPrecondition, type PreconditionRules } from '../../src/decide/preconditions.ts';

const NODE = 'arn:sim:k8s:local:000000000000:cluster/prod/node/n1';
const DEPLOYMENT = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/shop/deployment/web';
const POD_A = `${DEPLOYMENT}/pod/web-0`;
const POD_B = `${DEPLOYMENT}/pod/web-1`;
const NOW = 1_800_000_000_000;

const rules = (over: Partial<PreconditionRules> = {}): PreconditionRules => ({
  terminateUndrained: 'wait',
  minAvailableOf: () => 2,
  defaultPlanDeadlineMs: 60_000,
  ...over,
});
const node = (status: string, pods: string[] = [], drainsRunning = 0): Observation => ({
  arn: NODE,
  exists: true,
  kind: 'node',
  version: 1,
  state: { status, pods, drainsRunning },
  appliedRequestIds: [],
  inProgressRequestIds: [],
});
const req = (action: string, arn = NODE, params: Record<string, string> = {}) =>
  buildRequest({ requestId: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', agentId: 'ops', resourceArn: arn, action, params }, NOW);

describe('preconditions', () => {
  it('a node is terminated only when drained: cordoned, no pods, no drain running', () => {
    expect(checkPrecondition(req('terminate'), node('drained'), rules(), NOW)).toEqual({ kind: 'holds' });
    expect(checkPrecondition(req('terminate'), node('ready'), rules(), NOW)).toMatchObject({ kind: 'wait', detail: expect.stringContaining('status ready') });
    expect(checkPrecondition(req('terminate'), node('drained', [POD_A]), rules(), NOW)).toMatchObject({ kind: 'wait' });
    expect(checkPrecondition(req('terminate'), node('drained', [], 1), rules(), NOW)).toMatchObject({ kind: 'wait', detail: expect.stringContaining('1 drains running') });
    expect(checkPrecondition(req('terminate'), node('terminated'), rules(), NOW)).toMatchObject({ kind: 'reject' });
    // An executor that reports nothing about the node is not taken to mean "drained".
    expect(checkPrecondition(req('terminate'), { ...node('x'), state: {} }, rules(), NOW)).toMatchObject({ kind: 'wait' });
    expect(checkPrecondition(req('terminate'), { ...node('x'), state: { status: 'drained' } }, rules(), NOW)).toMatchObject({ kind: 'wait', detail: expect.stringContaining('pods unknown') });
  });

  it('terminate, where configured, expands into a drain plan whose ids are the same every time', () => {
    const a = checkPrecondition(req('terminate'), node('ready'), rules({ terminateUndrained: 'expand' }), NOW);
    const b = checkPrecondition(req('terminate'), node('cordoned'), rules({ terminateUndrained: 'expand' }), NOW + 5_000);
    expect(a).toMatchObject({ kind: 'expand', plan: { steps: [{ action: 'drain', resourceArn: NODE, after: [] }], parentRequestId: req('terminate').requestId } });
    if (a.kind !== 'expand' || b.kind !== 'expand') throw new Error('expected expansions');
    expect(b.plan.planId).toBe(a.plan.planId);
    expect(b.plan.steps[0]!.requestId).toBe(a.plan.steps[0]!.requestId);
  });

  it('a node drain with pods becomes cordon, then one eviction per pod after it; an empty node just drains', () => {
    const check = checkPrecondition(req('drain'), node('ready', [POD_B, POD_A]), rules(), NOW);
    if (check.kind !== 'expand') throw new Error(`expected an expansion, got ${check.kind}`);
    expect(check.plan.steps.map((s) => [s.action, s.resourceArn, s.after])).toEqual([
      ['cordon', NODE, []],
      ['evict', POD_A, [0]],
      ['evict', POD_B, [0]],
    ]);
    expect(check.plan.deadline).toBe(NOW + 60_000);
    expect(check.plan.steps[1]!.params).toEqual({ node: NODE, plan: check.plan.planId });
    // Other pods on the node (one landed before the cordon): another plan, for what is left.
    const later = checkPrecondition(req('drain'), node('cordoned', [POD_B]), rules(), NOW);
    expect(later.kind === 'expand' && later.plan.planId).not.toBe(check.plan.planId);
    expect(checkPrecondition(req('drain'), node('cordoned'), rules(), NOW)).toEqual({ kind: 'holds' });
    expect(checkPrecondition(req('drain'), node('terminating', [POD_A]), rules(), NOW)).toMatchObject({ kind: 'reject' });
  });

  it('a scale-down below the budget minimum is rejected; a scale-up or one within it holds', () => {
    const deployment: Observation = { ...node('x'), arn: DEPLOYMENT, kind: 'deployment', state: { replicas: 4, history: ['v1'] }, workload: { arn: DEPLOYMENT, desired: 4, available: 4, minAvailable: 2 } };
    expect(checkPrecondition(req('scale', DEPLOYMENT, { replicas: '1' }), deployment, rules(), NOW)).toMatchObject({ kind: 'reject', detail: expect.stringContaining('2') });
    expect(checkPrecondition(req('scale', DEPLOYMENT, { replicas: '2' }), deployment, rules(), NOW)).toEqual({ kind: 'holds' });
    expect(checkPrecondition(req('scale', DEPLOYMENT, { replicas: '6' }), deployment, rules(), NOW)).toEqual({ kind: 'holds' });
    expect(checkPrecondition(req('rollback', DEPLOYMENT), deployment, rules(), NOW)).toEqual({ kind: 'holds' });
  });
});

describe('rule order', () => {
  it('a rollback based on an outdated version is told it is stale before being told there is nothing to roll back to', async () => {
    const { decideAtHead, compileBudgetRules } = await import('../../src/decide/index.ts');
    const request = buildRequest({ agentId: 'ops', resourceArn: DEPLOYMENT, action: 'rollback', expectedVersion: 2 }, NOW);
    const observed: Observation = { ...node('x'), arn: DEPLOYMENT, kind: 'deployment', version: 3, state: { history: [] } };
    const budget = { rules: (compileBudgetRules([]) as { rules: never }).rules, defaultMinAvailable: '50%', onBreach: 'defer' as const };
    const step = decideAtHead(
      { request, deferredSince: null, deferRule: null, deferDetail: null, observeFirst: false },
      { observation: observed },
      [],
      { maxDeferMs: 60_000, clockSkewToleranceMs: 0, conflicts: { windowMs: 0, pairs: [] }, budget, preconditions: { terminateUndrained: 'wait', defaultPlanDeadlineMs: 60_000 } },
      NOW,
    );
    expect(step.kind === 'decided' && step.decision.status).toBe('REJECTED_STALE');
  });
});
