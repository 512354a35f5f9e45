import { isAction } from '../contract/actions.ts';
import type { FinalStatus } from '../contract/outcome.ts';
import type { PlanEventType, PlanSpec, PlanStatus, PlanStep, StepStatus } from '../contract/plan.ts';
import { isRequestId } from '../decide/index.ts';
import { tryParseArn } from '../routing/index.ts';

/** Plans are for ordering a handful of steps (a node and its pods), not for bulk work. */
export const MAX_PLAN_STEPS = 500;

export interface StepState {
  step: PlanStep;
  status: StepStatus;
  detail: string | null;
}

export interface PlanState {
  status: PlanStatus;
  deadline: number | null;
  steps: StepState[];
}

/** A released step's request reached its final outcome (a coalesced one: the outcome of its primary). */
export interface StepFinish {
  step: number;
  status: FinalStatus;
  detail: string | null;
}

export interface PlanInput {
  finished?: StepFinish[];
  cancel?: { by: string; reason: string | null };
  now: number;
}

export interface PlanEventDraft {
  type: PlanEventType;
  step: PlanStep | null;
  stepStatus: string | null;
  detail: string | null;
}

/** What changes, in the order it happened: stored and published together, in one transaction. */
export interface PlanTransition {
  status: PlanStatus;
  /** Steps whose status changed, with the new status. */
  steps: StepState[];
  /** Steps to publish as requests now. */
  release: PlanStep[];
  events: PlanEventDraft[];
}

/**
 * The plan state machine, pure. A step is released once every step it comes after has EXECUTED;
 * a step that ends any other way fails the plan and cancels the steps not yet released; so do the
 * plan's deadline and its agent's cancellation. Steps already released run to their own end (a
 * request on Kafka cannot be recalled); their results are still recorded.
 */
export function advancePlan(plan: PlanState, input: PlanInput): PlanTransition {
  const steps = new Map(plan.steps.map((s) => [s.step.step, { ...s }]));
  const changed = new Map<number, StepState>();
  const events: PlanEventDraft[] = [];
  const release: PlanStep[] = [];
  const set = (state: StepState, status: StepStatus, detail: string | null) => {
    state.status = status;
    state.detail = detail;
    changed.set(state.step.step, state);
  };

  for (const finish of input.finished ?? []) {
    const state = steps.get(finish.step);
    if (!state || state.status !== 'RELEASED') continue;
    set(state, finish.status, finish.detail);
    events.push({ type: 'STEP_FINISHED', step: state.step, stepStatus: finish.status, detail: finish.detail });
  }

  let status = plan.status;
  if (status === 'RUNNING') {
    const failedStep = [...steps.values()].find((s) => isFinalNotExecuted(s.status));
    const ending: { status: PlanStatus; type: PlanEventType; detail: string } | null = input.cancel
      ? { status: 'CANCELLED', type: 'CANCELLED', detail: `cancelled by ${input.cancel.by}${input.cancel.reason ? `: ${input.cancel.reason}` : ''}` }
      : failedStep
        ? { status: 'FAILED', type: 'FAILED', detail: `step ${failedStep.step.step} (${failedStep.step.action} ${failedStep.step.resourceArn}) ended ${failedStep.status}${failedStep.detail ? `: ${failedStep.detail}` : ''}` }
        : plan.deadline !== null && input.now >= plan.deadline
          ? { status: 'FAILED', type: 'FAILED', detail: 'the plan deadline passed' }
          : null;
    if (ending) {
      for (const state of steps.values()) {
        if (state.status !== 'WAITING') continue;
        set(state, 'CANCELLED', ending.detail);
        events.push({ type: 'STEP_CANCELLED', step: state.step, stepStatus: 'CANCELLED', detail: ending.detail });
      }
      status = ending.status;
      events.push({ type: ending.type, step: null, stepStatus: null, detail: ending.detail });
    } else {
      for (const state of steps.values()) {
        if (state.status !== 'WAITING') continue;
        if (!state.step.after.every((i) => steps.get(i)?.status === 'EXECUTED')) continue;
        set(state, 'RELEASED', null);
        release.push(state.step);
        events.push({ type: 'STEP_RELEASED', step: state.step, stepStatus: 'RELEASED', detail: null });
      }
      if ([...steps.values()].every((s) => s.status === 'EXECUTED')) {
        status = 'SUCCEEDED';
        events.push({ type: 'SUCCEEDED', step: null, stepStatus: null, detail: `all ${steps.size} steps executed` });
      }
    }
  }
  return { status, steps: [...changed.values()], release, events };
}

function isFinalNotExecuted(status: StepStatus): boolean {
  return status !== 'WAITING' && status !== 'RELEASED' && status !== 'EXECUTED' && status !== 'CANCELLED';
}

/** Everything wrong with a submitted plan, in one list; empty when it may run. */
export function validatePlan(spec: PlanSpec): string[] {
  const problems: string[] = [];
  if (!isRequestId(spec.planId)) problems.push(`plan id ${JSON.stringify(spec.planId.slice(0, 64))} is not a UUID`);
  if (spec.steps.length === 0) problems.push('a plan needs at least one step');
  if (spec.steps.length > MAX_PLAN_STEPS) problems.push(`a plan has at most ${MAX_PLAN_STEPS} steps, got ${spec.steps.length}`);
  const ids = new Set<string>();
  spec.steps.forEach((s, i) => {
    const label = `step ${i}`;
    if (!isAction(s.action)) problems.push(`${label}: unknown action '${s.action}'`);
    const arn = tryParseArn(s.resourceArn);
    if (!arn.ok) problems.push(`${label}: ${arn.reason}`);
    for (const j of s.after) {
      // Only earlier steps: the order the agent wrote is a topological order, so there is no cycle.
      if (!Number.isInteger(j) || j < 0 || j >= i) problems.push(`${label}: 'after' must name earlier steps (0..${i - 1}), got ${j}`);
    }
    if (!isRequestId(s.requestId)) problems.push(`${label}: request id ${JSON.stringify(s.requestId.slice(0, 64))} is not a UUID`);
    if (ids.has(s.requestId)) problems.push(`${label}: request id ${s.requestId} is used by another step`);
    ids.add(s.requestId);
  });
  return problems;
}
