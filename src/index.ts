// The package's public surface: the agent SDK, the worker, and the pieces to embed them. The tools
// around the product (tools/) use it through this file and the folders' index.ts only.
export * from './agent-sdk/index.ts';
export { Worker, type WorkerOptions, type WorkerState } from './worker/index.ts';
export { loadConfig, type ArbiterConfig } from './config/index.ts';
// TLS and SASL of a loaded config as kafkajs options: `new ArbiterClient({ ...kafkaSecurityOptions(config), … })`.
export { kafkaSecurityOptions, type KafkaSecurityOptions } from './contract/kafka-client.ts';
export { migrate } from './db/index.ts';
export { HttpExecutor, type Executor, type ExecuteInput, type ExecuteResult, type Observation } from './executor/index.ts';
export type { ObservedChange, ResourceObservation } from './contract/observation.ts';
export { ArbiterError, errorMessage, type ErrorCode } from './contract/errors.ts';
export { ACTIONS, type ActionName } from './contract/actions.ts';
export { isFinal, type Decision, type DecisionStatus, type FinalDecision } from './contract/decision.ts';
export { Serde } from './contract/serde.ts';
export { HEADERS, topicNames, type TopicNames } from './contract/topics.ts';
export { newId } from './contract/ids.ts';
export { PlanStore, PlanRelay, type PlanSummary } from './plans/index.ts';
