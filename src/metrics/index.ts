export { createMetrics, type Metrics } from './metrics.ts';
export { startMetricsServer, type HealthProbe } from './server.ts';
