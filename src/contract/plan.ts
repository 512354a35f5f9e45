import type { FinalStatus } from './outcome.ts';

/** A plan runs until every step executed, one step did not, its deadline passed, or its agent cancels it. */
export const PLAN_STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'REJECTED'] as const;
export type PlanStatus = (typeof PLAN_STATUSES)[number];

/**
 * WAITING for its predecessors; RELEASED (published as a request); then the final status of that
 * request, or CANCELLED when the plan ended before the step was released.
 */
export type StepStatus = 'WAITING' | 'RELEASED' | 'CANCELLED' | FinalStatus;

export function isPlanFinished(status: string): boolean {
  return status !== 'RUNNING';
}

/** One step as an agent writes it. `after` lists earlier steps (by index) that must execute first. */
export interface PlanStepInput {
  action: string;
  resourceArn: string;
  params?: Record<string, string>;
  /** Indexes of earlier steps; absent means "after the previous step" (a plain sequence). */
  after?: number[];
  /** Chosen by the SDK when absent, so the agent can follow each step's outcome too. */
  requestId?: string;
}

/** A step as stored and published: every field resolved. */
export interface PlanStep {
  step: number;
  requestId: string;
  action: string;
  resourceArn: string;
  params: Record<string, string>;
  after: number[];
}

/** A plan as submitted: by an agent (on `<prefix>.plan-commands`), or by Arbiter expanding a request. */
export interface PlanSpec {
  planId: string;
  agentId: string;
  steps: PlanStep[];
  /** Epoch milliseconds; every step's request carries it too. */
  deadline: number | null;
  reason: string | null;
  incidentId: string | null;
  /** The request this plan was expanded from, when Arbiter made it. */
  parentRequestId: string | null;
}

/** What a head-of-queue rule asks the worker to create so that an unmet precondition comes to hold. */
export type ExpansionPlan = Omit<PlanSpec, 'incidentId'>;

/** An agent's command on `<prefix>.plan-commands` (see schemas/plan-command.avsc). */
export interface PlanCommand {
  commandId: string;
  type: 'submit' | 'cancel';
  planId: string;
  agentId: string;
  steps: Array<Omit<PlanStep, 'step'>>;
  deadline: number | null;
  reason: string | null;
  incidentId: string | null;
  requestedAt: number;
}

export const PLAN_EVENT_TYPES = ['SUBMITTED', 'REJECTED', 'STEP_RELEASED', 'STEP_FINISHED', 'STEP_CANCELLED', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type PlanEventType = (typeof PLAN_EVENT_TYPES)[number];

/** Every change of a plan's state, in order (`seq` from 1), on `<prefix>.plan-events` keyed by plan id. */
export interface PlanEvent {
  planId: string;
  seq: number;
  agentId: string;
  type: PlanEventType;
  planStatus: PlanStatus;
  step: number | null;
  requestId: string | null;
  action: string | null;
  resourceArn: string | null;
  stepStatus: string | null;
  detail: string | null;
  at: number;
}

const TERMINAL_EVENTS: ReadonlySet<PlanEventType> = new Set(['REJECTED', 'SUCCEEDED', 'FAILED', 'CANCELLED']);

/** The event that ends a plan (its status is final from then on). */
export function isTerminalPlanEvent(event: Pick<PlanEvent, 'type'>): boolean {
  return TERMINAL_EVENTS.has(event.type);
}
