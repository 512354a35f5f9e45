export { coalesceKey } from './coalesce-key.ts';
export { Coalescer, type CoalesceMatch } from './coalescer.ts';
