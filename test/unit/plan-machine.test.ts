import { describe, expect, it } from 'vitest';
import type { PlanSpec, PlanStep } from '../../src/contract/plan.ts';
import { advancePlan, validatePlan, type PlanState } from '../../src/plans/index.ts';

const NODE = 'arn:sim:k8s:local:000000000000:cluster/prod/node/n1';
const id = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const step = (i: number, action: string, after: number[]): PlanStep => ({ step: i, requestId: id(i + 1), action, resourceArn: NODE, params: {}, after });

function plan(steps: PlanStep[], deadline: number | null = null): PlanState {
  return { status: 'RUNNING', deadline, steps: steps.map((s) => ({ step: s, status: 'WAITING', detail: null })) };
}

function apply(state: PlanState, t: ReturnType<typeof advancePlan>): PlanState {
  const changed = new Map(t.steps.map((s) => [s.step.step, s]));
  return { ...state, status: t.status, steps: state.steps.map((s) => changed.get(s.step.step) ?? s) };
}

describe('plan state machine', () => {
  const drainThenTerminate = [step(0, 'drain', []), step(1, 'terminate', [0])];

  it('releases a step only once every step it comes after has EXECUTED', () => {
    let state = plan(drainThenTerminate);
    const first = advancePlan(state, { now: 0 });
    expect(first.release.map((s) => s.step)).toEqual([0]);
    expect(first.events.map((e) => e.type)).toEqual(['STEP_RELEASED']);
    state = apply(state, first);
    // Nothing finished: nothing more to release, however often it is asked.
    expect(advancePlan(state, { now: 1 }).release).toEqual([]);
    const second = advancePlan(state, { now: 2, finished: [{ step: 0, status: 'EXECUTED', detail: null }] });
    expect(second.release.map((s) => s.step)).toEqual([1]);
    expect(second.events.map((e) => e.type)).toEqual(['STEP_FINISHED', 'STEP_RELEASED']);
    state = apply(state, second);
    const third = advancePlan(state, { now: 3, finished: [{ step: 1, status: 'EXECUTED', detail: null }] });
    expect(third.status).toBe('SUCCEEDED');
    expect(third.events.map((e) => e.type)).toEqual(['STEP_FINISHED', 'SUCCEEDED']);
  });

  it('a step that ends rejected fails the plan and cancels the steps not yet released, with the reason', () => {
    const steps = [step(0, 'cordon', []), step(1, 'drain', [0]), step(2, 'terminate', [1])];
    let state = apply(plan(steps), advancePlan(plan(steps), { now: 0 }));
    state = apply(state, advancePlan(state, { now: 1, finished: [{ step: 0, status: 'EXECUTED', detail: null }] }));
    const t = advancePlan(state, { now: 2, finished: [{ step: 1, status: 'REJECTED_BUDGET', detail: 'no capacity' }] });
    expect(t.status).toBe('FAILED');
    expect(t.release).toEqual([]);
    expect(t.steps.find((s) => s.step.step === 2)).toMatchObject({ status: 'CANCELLED', detail: expect.stringContaining('step 1 (drain') });
    expect(t.events.map((e) => e.type)).toEqual(['STEP_FINISHED', 'STEP_CANCELLED', 'FAILED']);
  });

  it('parallel steps after a common one are released together; the plan waits for all', () => {
    const steps = [step(0, 'cordon', []), step(1, 'evict', [0]), step(2, 'evict', [0])];
    let state = apply(plan(steps), advancePlan(plan(steps), { now: 0 }));
    const t = advancePlan(state, { now: 1, finished: [{ step: 0, status: 'EXECUTED', detail: null }] });
    expect(t.release.map((s) => s.step)).toEqual([1, 2]);
    state = apply(state, t);
    expect(advancePlan(state, { now: 2, finished: [{ step: 1, status: 'EXECUTED', detail: null }] }).status).toBe('RUNNING');
  });

  it('the deadline fails a running plan; cancellation cancels it; a finished plan does not change status', () => {
    const state = apply(plan(drainThenTerminate, 100), advancePlan(plan(drainThenTerminate, 100), { now: 0 }));
    expect(advancePlan(state, { now: 99 }).status).toBe('RUNNING');
    const expired = advancePlan(state, { now: 100 });
    expect(expired).toMatchObject({ status: 'FAILED', events: [{ type: 'STEP_CANCELLED' }, { type: 'FAILED', detail: 'the plan deadline passed' }] });
    const cancelled = advancePlan(state, { now: 5, cancel: { by: 'agent-a', reason: 'not needed' } });
    expect(cancelled.status).toBe('CANCELLED');
    expect(cancelled.steps[0]).toMatchObject({ status: 'CANCELLED', detail: 'cancelled by agent-a: not needed' });
    // A released step of a cancelled plan still gets its result recorded, and changes nothing else.
    const after = advancePlan(apply(state, cancelled), { now: 6, finished: [{ step: 0, status: 'EXECUTED', detail: null }] });
    expect(after).toMatchObject({ status: 'CANCELLED', release: [], events: [{ type: 'STEP_FINISHED' }] });
  });

  it('validation lists every problem: unknown action, bad ARN, a step after itself or a later one, reused ids', () => {
    const spec: PlanSpec = {
      planId: id(99),
      agentId: 'a',
      deadline: null,
      reason: null,
      incidentId: null,
      parentRequestId: null,
      steps: [
        { ...step(0, 'reboot', [0]) },
        { ...step(1, 'drain', [2]), resourceArn: 'not-an-arn' },
        { ...step(2, 'terminate', [0]), requestId: id(1) },
      ],
    };
    const problems = validatePlan(spec);
    expect(problems).toEqual([
      "step 0: unknown action 'reboot'",
      "step 0: 'after' must name earlier steps (0..-1), got 0",
      expect.stringContaining('step 1: '),
      "step 1: 'after' must name earlier steps (0..0), got 2",
      `step 2: request id ${id(1)} is used by another step`,
    ]);
    expect(validatePlan({ ...spec, steps: [] })).toEqual(['a plan needs at least one step']);
  });
});
