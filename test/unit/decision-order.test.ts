import { describe, expect, it } from 'vitest';
import { ACTIONS, type ActionName } from '../../src/contract/actions.ts';
import { followerDecision, inFlightFollower, type Decision, type FinalDecision } from '../../src/contract/decision.ts';
import { ArbiterError } from '../../src/contract/errors.ts';
import type { Observation } from '../../src/contract/observation.ts';
import { buildRequest, type RemediationRequest, type RequestInput } from '../../src/contract/request.ts';
import { coalesceKey, type CoalesceMatch } from '../../src/coalesce/index.ts';
import {
  compileBudgetRules,
  decideArrival,
  decideAtHead,
  decideExecution,
  decideOnError,
  type ArrivalRules,
  type HeadFacts,
  type HeadRules,
  type HeadStep,
  type QueuedRequest,
  type RecentChange,
} from '../../src/decide/index.ts';
import { compilePolicy, compileScopeRules, DEFAULT_SCOPE_RULES, partitionForKey } from '../../src/routing/index.ts';

/**
 * The whole order of the decision rules, as a table: one row per decision status (and per rule
 * that can produce it), on arrival and at the head of the queue. Each row is the smallest input
 * that reaches its rule; the order checks below show which rule wins when two apply.
 */

const NOW = 1_800_000_000_000;
const DEPLOYMENT = 'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/payments/deployment/api';
const POD = `${DEPLOYMENT}/pod/api-7d9f`;
const PARTITIONS = 12;
const OWNER = partitionForKey(DEPLOYMENT, PARTITIONS);
const PRIMARY = '11111111-1111-4111-8111-111111111111';

const request = (input: Partial<RequestInput> = {}): RemediationRequest =>
  buildRequest({ agentId: 'agent-a', resourceArn: POD, action: 'restart', ...input }, NOW - 1_000);

const arrivalRules: ArrivalRules = {
  scopes: compileScopeRules([...DEFAULT_SCOPE_RULES]),
  policy: compilePolicy({
    defaultEffect: 'allow',
    rules: [{ agents: ['intruder'], actions: ['*'], arns: ['**'], effect: 'deny' }],
    reservedTypes: {},
  }),
  limits: { maxParams: 4, maxParamBytes: 256, maxDependsOn: 4, maxIdLength: 64, maxReasonBytes: 256 },
  actions: Object.fromEntries(ACTIONS.map((a) => [a, { coalesceWindowMs: 30_000, waitForDuplicates: a === 'scale' }])) as Record<
    ActionName,
    { coalesceWindowMs: number; waitForDuplicates: boolean }
  >,
  clockSkewToleranceMs: 0,
};

const executedPrimary: FinalDecision = { status: 'EXECUTED', rule: 'execute', resourceVersion: 4, fencingToken: 9, detail: 'restarted' };

function arrive(req: RemediationRequest, { partition = OWNER, match }: { partition?: number; match?: CoalesceMatch } = {}): Decision {
  const view = { partition, partitions: PARTITIONS, coalesceMatch: (key: string) => (key === coalesceKey(POD, 'restart', {}) ? match : undefined) };
  return decideArrival(req, DEPLOYMENT, view, arrivalRules, NOW).decision;
}

const headRules: HeadRules = {
  maxDeferMs: 120_000,
  clockSkewToleranceMs: 0,
  conflicts: { windowMs: 300_000, pairs: [['rollback', 'hotfix']] },
  budget: { rules: (compileBudgetRules([]) as { rules: HeadRules['budget']['rules'] }).rules, defaultMinAvailable: '50%', onBreach: 'defer' },
  preconditions: { terminateUndrained: 'wait', defaultPlanDeadlineMs: 3_600_000 },
};

const observation = (over: Partial<Observation> = {}): Observation => ({
  arn: POD,
  exists: true,
  kind: 'pod',
  version: 3,
  state: { ready: true },
  workload: { arn: DEPLOYMENT, desired: 4, available: 4, minAvailable: 0 },
  appliedRequestIds: [],
  inProgressRequestIds: [],
  ...over,
});

const queued = (req: RemediationRequest, over: Partial<QueuedRequest> = {}): QueuedRequest => ({
  request: req,
  deferredSince: null,
  deferRule: null,
  deferDetail: null,
  observeFirst: false,
  ...over,
});

function atHead(
  q: QueuedRequest,
  facts: HeadFacts = { observation: observation() },
  { recent = [], rules = headRules }: { recent?: RecentChange[]; rules?: HeadRules } = {},
): HeadStep {
  return decideAtHead(q, facts, recent, rules, NOW);
}

const NODE = 'arn:aws:k8s:us-east-1:123456789012:cluster/prod/node/ip-10-0-0-1';
const nodeObservation = (status: string, pods: string[], drainsRunning = 0): Observation =>
  observation({ arn: NODE, kind: 'node', state: { status, pods, drainsRunning }, workload: undefined });
/** The plan fact for whatever plan id the rule asks about (ids are derived from the request). */
const planFact = (plan: { status: string; detail: string | null } | null): HeadFacts['plans'] =>
  ({ has: () => true, get: () => plan }) as unknown as HeadFacts['plans'];

const decided = (step: HeadStep) => (step.kind === 'decided' ? { status: step.decision.status, rule: step.decision.rule } : step.kind);

describe('arrival: one row per decision, in rule order', () => {
  const DEP = '22222222-2222-4222-8222-222222222222';
  const rows: Array<[string, () => Decision, Decision['status'], Decision['rule']]> = [
    ['an ARN that does not parse', () => arrive(request({ resourceArn: 'not-an-arn' })), 'REJECTED_INVALID', 'arn'],
    ['a record keyed onto another partition than its scope’s', () => arrive(request(), { partition: (OWNER + 1) % PARTITIONS }), 'REROUTED', 'route'],
    ['an unknown action', () => arrive(request({ action: 'reboot' })), 'REJECTED_INVALID', 'validate'],
    ['an agent the policy denies', () => arrive(request({ agentId: 'intruder' })), 'REJECTED_UNAUTHORIZED', 'authorize'],
    ['a deadline already passed', () => arrive(request({ deadline: NOW - 1 })), 'EXPIRED', 'deadline'],
    ['a duplicate of a primary in flight', () => arrive(request(), { match: { kind: 'in-flight', primaryRequestId: PRIMARY } }), 'COALESCED', 'coalesce'],
    [
      'a duplicate of a primary executed within its window',
      () => arrive(request(), { match: { kind: 'finished', primaryRequestId: PRIMARY, outcome: executedPrimary } }),
      'COALESCED',
      'coalesce',
    ],
    ['anything else', () => arrive(request({ dependsOn: [DEP] })), 'ACCEPTED', 'accept'],
  ];
  it.each(rows)('%s → %s by rule %s', (_what, decide, status, rule) => {
    const decision = decide();
    expect({ status: decision.status, rule: decision.rule }).toEqual({ status, rule });
    expect(decision.detail.length).toBeGreaterThan(0);
  });

  it('gives a coalesced request its primary, and a finished primary’s result', () => {
    const inFlight = arrive(request(), { match: { kind: 'in-flight', primaryRequestId: PRIMARY } });
    expect(inFlight).toMatchObject({ primaryRequestId: PRIMARY, inFlight: true });
    const finished = arrive(request(), { match: { kind: 'finished', primaryRequestId: PRIMARY, outcome: executedPrimary } });
    expect(finished).toMatchObject({ primaryRequestId: PRIMARY, resourceVersion: 4, fencingToken: 9 });
    expect(finished.detail).toContain('which ended EXECUTED');
  });

  it('holds a trailing-mode primary for its window, and sends a re-route to the scope’s partition', () => {
    expect(arrive(request({ action: 'scale' }))).toMatchObject({ status: 'ACCEPTED', notBefore: NOW + 30_000 });
    expect(arrive(request())).toMatchObject({ status: 'ACCEPTED', notBefore: NOW });
    expect(arrive(request(), { partition: (OWNER + 1) % PARTITIONS })).toMatchObject({ toPartition: OWNER });
  });

  it.each<[string, RemediationRequest, Decision['rule']]>([
    ['route before validation (the scope’s owner validates)', request({ action: 'reboot' }), 'route'],
    ['validation before authorization', request({ action: 'reboot', agentId: 'intruder' }), 'validate'],
    ['authorization before the deadline', request({ agentId: 'intruder', deadline: NOW - 1 }), 'authorize'],
  ])('order: %s', (_what, req, rule) => {
    const partition = rule === 'route' ? (OWNER + 1) % PARTITIONS : OWNER;
    expect(arrive(req, { partition }).rule).toBe(rule);
  });

  it('a deadline passes only after the clock-skew tolerance, on arrival and at the head of the queue', () => {
    const tolerant = { ...arrivalRules, clockSkewToleranceMs: 2_000 };
    const view = { partition: OWNER, partitions: PARTITIONS, coalesceMatch: () => undefined };
    expect(decideArrival(request({ deadline: NOW - 1_999 }), DEPLOYMENT, view, tolerant, NOW).decision.status).toBe('ACCEPTED');
    expect(decideArrival(request({ deadline: NOW - 2_000 }), DEPLOYMENT, view, tolerant, NOW).decision.status).toBe('EXPIRED');
    const rules = { ...headRules, clockSkewToleranceMs: 2_000 };
    expect(atHead(queued(request({ deadline: NOW - 1_999 })), undefined, { rules }).kind).toBe('execute');
    expect(decided(atHead(queued(request({ deadline: NOW - 2_000 })), undefined, { rules }))).toEqual({ status: 'EXPIRED', rule: 'give-up' });
  });

  it('order: the deadline before coalescing (an expired duplicate is not merged)', () => {
    expect(arrive(request({ deadline: NOW }), { match: { kind: 'in-flight', primaryRequestId: PRIMARY } }).rule).toBe('deadline');
  });
});

describe('head of the queue: one row per decision, in rule order', () => {
  const DEP = '33333333-3333-4333-8333-333333333333';
  const withDep = request({ dependsOn: [DEP] });
  const rows: Array<[string, () => HeadStep, ReturnType<typeof decided>]> = [
    ['its deadline passed while queued', () => atHead(queued(request({ deadline: NOW }))), { status: 'EXPIRED', rule: 'give-up' }],
    [
      'deferred on the budget for longer than maxDeferMs',
      () => atHead(queued(request(), { deferredSince: NOW - 120_000, deferRule: 'budget', deferDetail: 'below minimum' })),
      { status: 'REJECTED_BUDGET', rule: 'give-up' },
    ],
    ['its dependencies not fetched yet', () => atHead(queued(withDep), {}), 'need'],
    [
      'a dependency not final yet',
      () => atHead(queued(withDep), { dependencies: new Map([[DEP, { final: false, effectiveStatus: 'ACCEPTED' }]]) }),
      { status: 'DEFERRED', rule: 'dependencies' },
    ],
    [
      'a dependency that failed',
      () => atHead(queued(withDep), { dependencies: new Map([[DEP, { final: true, effectiveStatus: 'FAILED' }]]) }),
      { status: 'FAILED', rule: 'dependencies' },
    ],
    ['not observed yet', () => atHead(queued(request()), {}), 'need'],
    ['the executor cannot be reached to observe', () => atHead(queued(request()), { observation: { unavailable: 'ECONNREFUSED' } }), { status: 'DEFERRED', rule: 'executor' }],
    ['a resource the executor does not know', () => atHead(queued(request()), { observation: observation({ exists: false }) }), { status: 'REJECTED_INVALID', rule: 'observe' }],
    [
      'an earlier attempt applied it (owner died mid-action)',
      () => atHead(queued(request({ requestId: PRIMARY }), { observeFirst: true }), { observation: observation({ appliedRequestIds: [PRIMARY] }) }),
      { status: 'EXECUTED', rule: 'recovery' },
    ],
    [
      'an earlier attempt is still running it',
      () => atHead(queued(request({ requestId: PRIMARY }), { observeFirst: true }), { observation: observation({ inProgressRequestIds: [PRIMARY] }) }),
      { status: 'DEFERRED', rule: 'recovery' },
    ],
    [
      'a terminate of a node that is not drained (preconditions.terminateUndrained: wait)',
      () => atHead(queued(request({ resourceArn: NODE, action: 'terminate' })), { observation: nodeObservation('ready', [POD]) }),
      { status: 'DEFERRED', rule: 'precondition' },
    ],
    [
      'waiting on a precondition past maxDeferMs',
      () => atHead(queued(request({ resourceArn: NODE, action: 'terminate' }), { deferredSince: NOW - 120_000, deferRule: 'precondition', deferDetail: 'not drained' })),
      { status: 'REJECTED_PRECONDITION', rule: 'give-up' },
    ],
    [
      'a rollback with no previous revision (waiting cannot help)',
      () => atHead(queued(request({ resourceArn: DEPLOYMENT, action: 'rollback' })), { observation: observation({ arn: DEPLOYMENT, kind: 'deployment', state: { history: [] } }) }),
      { status: 'REJECTED_PRECONDITION', rule: 'precondition' },
    ],
    ['a node drain with pods on the node, its plan not looked up yet', () => atHead(queued(request({ resourceArn: NODE, action: 'drain' })), { observation: nodeObservation('ready', [POD]) }), 'need'],
    [
      'a node drain with pods on the node, no plan made yet',
      () => atHead(queued(request({ resourceArn: NODE, action: 'drain' })), { observation: nodeObservation('ready', [POD]), plans: planFact(null) }),
      { status: 'DEFERRED', rule: 'plan' },
    ],
    [
      'a node drain whose eviction plan failed',
      () => atHead(queued(request({ resourceArn: NODE, action: 'drain' })), { observation: nodeObservation('cordoned', [POD]), plans: planFact({ status: 'FAILED', detail: 'x' }) }),
      { status: 'FAILED', rule: 'plan' },
    ],
    ['based on another version', () => atHead(queued(request({ expectedVersion: 2 }))), { status: 'REJECTED_STALE', rule: 'stale' }],
    [
      'undoing another agent’s recent change',
      () =>
        atHead(queued(request({ action: 'rollback' })), undefined, {
          recent: [{ requestId: PRIMARY, agentId: 'agent-b', action: 'hotfix', at: NOW - 1_000, resourceVersion: 3 }],
        }),
      { status: 'REJECTED_CONFLICT', rule: 'conflict' },
    ],
    [
      'a restart that would breach the budget (configured to reject)',
      () =>
        atHead(queued(request()), { observation: observation({ workload: { arn: DEPLOYMENT, desired: 4, available: 2, minAvailable: 0 } }) }, {
          rules: { ...headRules, budget: { ...headRules.budget, onBreach: 'reject' } },
        }),
      { status: 'REJECTED_BUDGET', rule: 'budget' },
    ],
    [
      'a restart that would breach the budget (configured to wait)',
      () => atHead(queued(request()), { observation: observation({ workload: { arn: DEPLOYMENT, desired: 4, available: 2, minAvailable: 0 } }) }),
      { status: 'DEFERRED', rule: 'budget' },
    ],
    ['nothing stands in the way', () => atHead(queued(request())), 'execute'],
  ];
  it.each(rows)('%s → %j', (_what, step, expected) => {
    expect(decided(step())).toEqual(expected);
  });

  it('asks for each fact only when the rules reach it: dependencies before the observation', () => {
    expect(atHead(queued(withDep), {})).toEqual({ kind: 'need', fact: 'dependencies' });
    const deps = new Map([[DEP, { final: true, effectiveStatus: 'EXECUTED' }]]);
    expect(atHead(queued(withDep), { dependencies: deps })).toEqual({ kind: 'need', fact: 'observation' });
    expect(atHead(queued(withDep), { dependencies: deps, observation: observation() }).kind).toBe('execute');
  });

  it.each<[string, QueuedRequest, HeadFacts, Decision['rule']]>([
    ['give-up before dependencies', queued(request({ deadline: NOW, dependsOn: [DEP] })), {}, 'give-up'],
    ['dependencies before observing', queued(withDep), { dependencies: new Map(), observation: observation({ exists: false }) }, 'dependencies'],
    ['recovery before staleness', queued(request({ requestId: PRIMARY, expectedVersion: 1 }), { observeFirst: true }), { observation: observation({ appliedRequestIds: [PRIMARY] }) }, 'recovery'],
    [
      'staleness before the budget',
      queued(request({ expectedVersion: 1 })),
      { observation: observation({ workload: { arn: DEPLOYMENT, desired: 4, available: 1, minAvailable: 0 } }) },
      'stale',
    ],
  ])('order: %s', (_what, q, facts, rule) => {
    const step = atHead(q, facts);
    expect(step.kind === 'decided' && step.decision.rule).toBe(rule);
  });

  it('a budget rule compiled from the config overrides the default minimum', () => {
    const strict = compileBudgetRules([{ match: '.*/deployment/api', minAvailable: 4 }]);
    if ('problems' in strict) throw new Error('expected a valid rule');
    const rules = { ...headRules, budget: { ...headRules.budget, rules: strict.rules } };
    expect(decided(atHead(queued(request()), undefined, { rules }))).toEqual({ status: 'DEFERRED', rule: 'budget' });
    expect(decided(atHead(queued(request())))).toBe('execute');
  });
});

describe('execution and errors: one row per decision', () => {
  const policy = { maxAttempts: 3, backoffMs: 100, maxBackoffMs: 1_000, lockRetryMs: 50 };
  const rows: Array<[string, () => Decision, Decision['status'], Decision['rule']]> = [
    ['verified', () => decideExecution({ fencingToken: 7, result: { ok: true, version: 4, detail: 'ok' }, verified: { ok: true, version: 4, detail: 'ok' } }), 'EXECUTED', 'execute'],
    ['refused by the executor', () => decideExecution({ fencingToken: 7, result: { ok: false, version: 3, detail: 'no', code: 'NOPE' } }), 'FAILED', 'execute'],
    ['not verified', () => decideExecution({ fencingToken: 7, result: { ok: true, version: 4, detail: 'ok' }, verified: { ok: false, version: 3, detail: 'unchanged' } }), 'FAILED', 'verify'],
    ['the lock is held by someone else', () => decideOnError(new ArbiterError('LOCK_HELD', 'held'), 0, policy, NOW), 'DEFERRED', 'lock'],
    ['the lock was lost mid-action', () => decideOnError(new ArbiterError('LOCK_LOST', 'lost'), 0, policy, NOW), 'DEFERRED', 'lock'],
    ['the executor is unreachable', () => decideOnError(new ArbiterError('EXECUTOR_UNAVAILABLE', 'down'), 0, policy, NOW), 'DEFERRED', 'executor'],
    ['the registry is unreachable', () => decideOnError(new ArbiterError('REGISTRY_UNAVAILABLE', 'down'), 0, policy, NOW), 'DEFERRED', 'executor'],
    ['an unexpected error, first time', () => decideOnError(new TypeError('boom'), 1, policy, NOW), 'DEFERRED', 'error'],
    ['an unexpected error, the last allowed attempt', () => decideOnError(new TypeError('boom'), 3, policy, NOW), 'FAILED', 'error'],
  ];
  it.each(rows)('%s → %s by rule %s', (_what, decide, status, rule) => {
    const decision = decide();
    expect({ status: decision.status, rule: decision.rule }).toEqual({ status, rule });
  });

  it('an unexpected error backs off exponentially up to the cap, observing first, then fails with the error', () => {
    const waits = [1, 2].map((attempt) => {
      const d = decideOnError(new TypeError('boom'), attempt, { ...policy, maxAttempts: 10 }, NOW);
      return d.status === 'DEFERRED' ? [d.retryAt! - NOW, d.observeFirst] : null;
    });
    expect(waits).toEqual([[100, true], [200, true]]);
    const capped = decideOnError(new TypeError('boom'), 9, { ...policy, maxAttempts: 10 }, NOW);
    expect(capped.status === 'DEFERRED' && capped.retryAt! - NOW).toBe(1_000);
    expect(decideOnError(new TypeError('boom'), 3, policy, NOW).detail).toContain('failed after 3 attempt(s) with an unexpected error: boom');
  });

  it('a permanent ArbiterError is not mistaken for a retryable one', () => {
    expect(decideOnError(new ArbiterError('EXECUTOR_FAILED', 'bad request'), 3, policy, NOW).status).toBe('FAILED');
  });
});

describe('arrival: duplicates of one primary', () => {
  it('share one decision, the one derived from their match, frozen', () => {
    const match: CoalesceMatch = { kind: 'finished', primaryRequestId: PRIMARY, outcome: executedPrimary };
    const first = arrive(request({ agentId: 'agent-b' }), { match });
    const second = arrive(request({ agentId: 'agent-c' }), { match });
    expect(second).toBe(first);
    expect(first).toEqual(followerDecision(PRIMARY, executedPrimary));
    expect(Object.isFrozen(first)).toBe(true);
    const inFlight: CoalesceMatch = { kind: 'in-flight', primaryRequestId: PRIMARY };
    expect(arrive(request({ agentId: 'agent-d' }), { match: inFlight })).toEqual(inFlightFollower(PRIMARY));
    expect(arrive(request({ agentId: 'agent-e' }), { match: inFlight })).toBe(arrive(request({ agentId: 'agent-f' }), { match: inFlight }));
  });
});
