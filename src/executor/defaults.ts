/**
 * The connections a worker keeps to its executor unless told otherwise (executor.maxConnections,
 * per pool: actions and observations). A guard rail, not a tuning: unbounded, the benchmark's storm
 * opened ~930 per worker to one endpoint, and a larger storm would open more. 256 cost the storm
 * nothing measurable; 64 answered its duplicates sooner but cost PostgreSQL 11-24 % more CPU per
 * request and 5-10 % of the throughput (docs/EXECUTOR.md, docs/BENCHMARKS.md eleventh pass).
 */
export const DEFAULT_MAX_CONNECTIONS = 256;
