export { createMetrics, type HeldRequests, type Metrics } from './metrics.ts';
export { startMetricsServer, type HealthProbe } from './server.ts';
export { LagMonitor } from './lag.ts';
export { LockLogExporter } from './lock-log.ts';
