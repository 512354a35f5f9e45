export { Fleet, type ActionResult, type FleetObservation, type FleetOptions, type FleetResourceSummary } from './fleet.ts';
export { ObservationFeed, type ObservationSink } from './observation-feed.ts';
export type { ActionRequest, FleetErrorCode } from './fleet-actions.ts';
export type { FencedAttempt, FleetStats } from './fleet-state.ts';
export type { ExecutionRecord } from './executions.ts';
export {
  DEFAULT_FLEET_SPEC,
  DEFAULT_LATENCY_MS,
  generateFleetSpec,
  parseFleetSpec,
  type DeploymentSpec,
  type FleetSpec,
  type FleetSpecInput,
  type GenerateFleetOptions,
  type LatencyKey,
  type NodeSpec,
} from './fleet-spec.ts';
export { VIOLATION_KINDS, type Violation, type ViolationKind, type ViolationReport } from './violations.ts';
export { deploymentArn, nodeArn, podArn } from './arns.ts';
export { startSimServer, type SimServer, type SimServerOptions } from './server.ts';
