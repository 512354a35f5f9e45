export { createPool, inTransaction, isConnectionError, isPoolExhausted, pgConnectionString, preparedName, SSL_MODES, type Pool, type PoolClient } from './pool.ts';
export { migrate, migrationLogger, ensureDatabase, MIGRATIONS_DIR, type MigrateResult } from './migrate.ts';
export { BatchWriter } from './batch-writer.ts';
