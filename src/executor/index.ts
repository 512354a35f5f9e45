export type { ExecuteInput, ExecuteResult, Executor, Observation } from './types.ts';
export { HttpExecutor, type HttpExecutorOptions } from './http-executor.ts';
