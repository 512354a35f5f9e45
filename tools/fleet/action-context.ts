import type { FleetState } from './fleet-state.ts';

export interface ActionRequest {
  requestId: string;
  agentId: string;
  arn: string;
  action: string;
  params: Record<string, string>;
  /** Absent for agents acting directly, without Arbiter: accepted, but never fenced. */
  fencingToken?: number;
}

export type FleetErrorCode =
  | 'BAD_REQUEST'
  | 'NOT_FOUND'
  | 'FENCED'
  | 'INVALID_ACTION'
  | 'INVALID_PARAMS'
  | 'NO_PREVIOUS_REVISION'
  | 'NODE_TERMINATED'
  | 'RESOURCE_REMOVED'
  | 'INJECTED_FAILURE';

export interface Refusal {
  ok: false;
  code: FleetErrorCode;
  detail: string;
}

export type Finished = { ok: true; detail: string } | Refusal;

/**
 * An accepted action split at its two instants: `start` is when it begins to affect the
 * resource (a pod stops serving, a node is cordoned), `finish` when it is done, after its
 * latency. Violations are judged at those instants, as real infrastructure would show them.
 */
export interface PreparedAction {
  ok: true;
  start(): void;
  finish(): Finished;
}

export interface ActionContext {
  state: FleetState;
  req: ActionRequest;
  now(): number;
  /** Runs `fn` after `ms` unless the fleet is reset or closed first. */
  schedule(ms: number, fn: () => void): void;
}

export function refuse(code: FleetErrorCode, detail: string): Refusal {
  return { ok: false, code, detail };
}

export function done(detail: string): Finished {
  return { ok: true, detail };
}
