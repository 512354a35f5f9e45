import pg from 'pg';

// Postgres bigint arrives as a string by default; our bigints (versions, tokens, offsets) fit in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export interface PoolOptions {
  max?: number;
  /** Giving up on a new connection (an unreachable server fails fast instead of hanging). */
  connectTimeoutMs?: number;
  /** Server-side limit on any one statement. */
  statementTimeoutMs?: number;
  /** A transaction left idle this long (a stalled process) is ended by the server, freeing its locks. */
  idleInTransactionTimeoutMs?: number;
  /**
   * Told of errors on idle connections (the server restarted, a backend was terminated). Without
   * a listener node-postgres would crash the process; the pool drops the broken connection itself.
   */
  onError?: (error: Error) => void;
}

export function createPool(databaseUrl: string, options: PoolOptions | number = {}): pg.Pool {
  const o: PoolOptions = typeof options === 'number' ? { max: options } : options;
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: o.max ?? 10,
    application_name: 'arbiter',
    connectionTimeoutMillis: o.connectTimeoutMs ?? 5_000,
    statement_timeout: o.statementTimeoutMs ?? 30_000,
    idle_in_transaction_session_timeout: o.idleInTransactionTimeoutMs ?? 60_000,
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', (error) => o.onError?.(error));
  // A checked-out client whose connection dies between two queries (inside a transaction) emits
  // 'error' on itself, where the pool does not listen: the next query fails and the caller sees it.
  pool.on('connect', (client) => client.on('error', (error) => o.onError?.(error)));
  return pool;
}

/** Runs `fn` in one transaction; rolls back on any error. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

/**
 * True when an error says PostgreSQL was unreachable or went away (connection refused or reset,
 * SQLSTATE class 08, admin/crash shutdown 57P01-57P03), as opposed to a statement that failed:
 * the former is worth trying again, the latter is not.
 */
export function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_ERRNOS.has(code) || code.startsWith('08') || /^57P0[123]$/.test(code))) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test((error as Error).message ?? '');
}
