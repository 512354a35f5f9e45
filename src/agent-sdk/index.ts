export { ArbiterClient, PlanHandle, type ArbiterClientOptions, type ObservationInput } from './client.ts';
export type { ObservedChange, ResourceObservation } from '../contract/observation.ts';
export type { PlanResult } from './plan-watcher.ts';
export type { PlanEvent, PlanStatus, PlanStepInput, StepStatus } from '../contract/plan.ts';
export { ArbiterLocks } from './locks.ts';
export { buildRequest, type RemediationRequest, type RequestInput } from '../contract/request.ts';
export type { RemediationOutcome, OutcomeStatus, FinalStatus } from '../contract/outcome.ts';
