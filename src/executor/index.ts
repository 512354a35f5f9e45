export type { ExecuteInput, ExecuteResult, Executor, Observation } from './types.ts';
export { HttpExecutor, type HttpExecutorOptions } from './http-executor.ts';
export {
  Fleet,
  generateFleetSpec,
  parseFleetSpec,
  startSimServer,
  DEFAULT_FLEET_SPEC,
  VIOLATION_KINDS,
  deploymentArn,
  nodeArn,
  podArn,
  type FleetSpec,
  type FleetSpecInput,
  type GenerateFleetOptions,
  type SimServer,
  type SimServerOptions,
  type Violation,
  type ViolationKind,
  type ViolationReport,
} from './sim/index.ts';
