export { createPool, inTransaction, isConnectionError, isPoolExhausted, pgConnectionString, PREPARE_BULK, SSL_MODES, type Pool, type PoolClient } from './pool.ts';
export { migrate, ensureDatabase, MIGRATIONS_DIR, type MigrateResult } from './migrate.ts';
export { BatchWriter } from './batch-writer.ts';
