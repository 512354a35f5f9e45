export { Worker, type WorkerOptions, type WorkerState } from './worker.ts';
export { ensureTopics } from './topics.ts';
export { applyHeapPolicy } from './heap-policy.ts';
export { untilAvailable } from './transient.ts';
export { WORKER_MALLOC_ENV, mallocSettingsMissing } from './allocator.ts';
export { WORKER_SEMI_SPACE_FLAG, semiSpaceFlagGiven, semiSpaceFlagMissing } from './young-generation.ts';
