export type { ExecuteInput, ExecuteResult, Executor, Observation } from './types.ts';
export { HttpExecutor, type HttpExecutorOptions } from './http-executor.ts';
export { DEFAULT_MAX_CONNECTIONS } from './defaults.ts';
export { httpExecutorOptions, type ExecutorSettings } from './from-config.ts';
export {
  DEFAULT_SIGNATURE_TOLERANCE_MS,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  keyFingerprint,
  pathWithQueryOf,
  signedFetch,
  signingPayload,
  signRequest,
  verifySignature,
  type SignatureCheck,
  type SignInput,
  type VerifyInput,
} from './signing.ts';
