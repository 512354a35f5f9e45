import type { Observation } from '../contract/observation.ts';

export type { Observation };

/**
 * What the worker needs from whatever changes infrastructure. Implementations: the simulated
 * fleet over HTTP (`sim/`) and any user endpoint that speaks the webhook contract
 * (`http-executor.ts`, docs/EXECUTOR.md).
 */

export interface ExecuteInput {
  requestId: string;
  agentId: string;
  arn: string;
  action: string;
  params: Record<string, string>;
  /** Monotonically increasing per resource lock; the target refuses anything lower than it has seen. */
  fencingToken: number;
  signal?: AbortSignal;
}

export interface ExecuteResult {
  ok: boolean;
  version: number;
  detail: string;
  code?: string;
}


export interface Executor {
  execute(input: ExecuteInput): Promise<ExecuteResult>;
  /** Reads back the resource after an execution and says whether the change took effect. */
  verify(input: ExecuteInput, result: ExecuteResult): Promise<{ ok: boolean; version: number; detail: string }>;
  observe(arn: string, signal?: AbortSignal): Promise<Observation>;
}
