export { createPool, inTransaction, isConnectionError, type Pool, type PoolClient } from './pool.ts';
export { migrate, ensureDatabase, MIGRATIONS_DIR, type MigrateResult } from './migrate.ts';
