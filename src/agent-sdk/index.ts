export { ArbiterClient, type ArbiterClientOptions } from './client.ts';
export { ArbiterLocks } from './locks.ts';
export { buildRequest, type RemediationRequest, type RequestInput } from '../contract/request.ts';
export type { RemediationOutcome, OutcomeStatus, FinalStatus } from '../contract/outcome.ts';
