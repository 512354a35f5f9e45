export { coalesceKey } from './coalesce-key.ts';
export { Coalescer, type CoalesceMatch, type PrimaryOutcome } from './coalescer.ts';
