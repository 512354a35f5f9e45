export { Worker, type WorkerOptions, type WorkerState } from './worker.ts';
export { ensureTopics } from './topics.ts';
export { applyHeapPolicy } from './heap-policy.ts';
export { untilAvailable } from './transient.ts';
