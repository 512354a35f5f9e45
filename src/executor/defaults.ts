/**
 * The connections a worker keeps to its executor unless told otherwise (executor.maxConnections,
 * per pool: actions and observations). Enough that calls rarely wait — a storm of 10,008 restarts
 * of 300 ms each ran 128 at once over two workers — and few enough that a storm over thousands of
 * resources does not open thousands of connections to one endpoint (docs/EXECUTOR.md).
 */
export const DEFAULT_MAX_CONNECTIONS = 64;
