// The package's public surface: the agent SDK, the worker, and the pieces to embed them.
export * from './agent-sdk/index.ts';
export { Worker, type WorkerOptions, type WorkerState } from './worker/index.ts';
export { loadConfig, type ArbiterConfig } from './config/index.ts';
export { migrate } from './db/index.ts';
export { HttpExecutor, type Executor, type ExecuteInput, type ExecuteResult, type Observation } from './executor/index.ts';
export { ArbiterError, type ErrorCode } from './contract/errors.ts';
