import pg from 'pg';
import { arrayLiteral } from './array-literal.ts';

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
  /**
   * Prepare the pool's small parameterised statements once per connection (named statements): a
   * worker runs the same dozen statements for every execution, and parsing and planning them again
   * each time cost PostgreSQL more than running them. Bulk statements (unnest, ANY) stay unnamed:
   * their best plan depends on the size of the arrays. So do statements reading `*`. A statement
   * measured to be worth preparing anyway is given its name by its caller (`preparedName`).
   */
  prepareStatements?: boolean;
}

/** The `sslmode` values Arbiter accepts, with libpq's meaning (docs/SECURITY.md). */
export const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;

/**
 * The connection string as node-postgres should read it, so that `sslmode` means what it means to
 * libpq (and psql, and every other tool given the same DATABASE_URL): `require` encrypts without
 * checking the server (or checks the chain only, given `sslrootcert`), `verify-ca` checks the chain,
 * `verify-full` the chain and the host name. pg-connection-string 2.x reads `require` and
 * `verify-ca` as `verify-full` unless told `uselibpqcompat=true`, and its next major version
 * switches to libpq's meaning; asking for it now keeps one meaning across that upgrade.
 * `prefer` and `allow` are refused: node-postgres never falls back to plain text, so they would
 * not mean what they say. A URL that sets `uselibpqcompat` itself is left as it is.
 */
export function pgConnectionString(databaseUrl: string): string {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return databaseUrl; // a socket path or a malformed URL: node-postgres reports what it makes of it
  }
  const mode = url.searchParams.get('sslmode');
  if (mode === null || url.searchParams.has('uselibpqcompat')) return databaseUrl;
  if (!(SSL_MODES as readonly string[]).includes(mode)) {
    throw new Error(`DATABASE_URL: sslmode=${mode} is not supported; use one of ${SSL_MODES.join(', ')} (verify-full in production)`);
  }
  // Appended as text: re-serialising the URL would re-encode the password and the other parameters.
  const [beforeFragment, fragment] = splitOnce(databaseUrl, '#');
  return `${beforeFragment}&uselibpqcompat=true${fragment === undefined ? '' : `#${fragment}`}`;
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

export function createPool(databaseUrl: string, options: PoolOptions | number = {}): pg.Pool {
  const o: PoolOptions = typeof options === 'number' ? { max: options } : options;
  const pool = new pg.Pool({
    connectionString: pgConnectionString(databaseUrl),
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
  pool.on('connect', (client) => {
    client.on('error', (error) => o.onError?.(error));
    wrapQuery(client, o.prepareStatements ?? false);
  });
  return pool;
}

const PREPARED_MAX = 256;
const statementNames = new Map<string, string | null>();

/**
 * The name to prepare `text` under, for a caller that prepares a statement itself
 * (`query({ name, text, values })`, on any pool): one whose plan was measured to be as good for one
 * row as for thousands, and whose planning costs more than running it for a few rows — the arrival
 * statement (audit/arrivals.ts).
 */
export function preparedName(text: string): string {
  return `arbiter_${fnv1a(text)}`;
}

/** The name a statement is prepared under, or null for one left unnamed. */
function statementName(text: string): string | null {
  let name = statementNames.get(text);
  if (name !== undefined) return name;
  // `*` too: a prepared `SELECT s.*` fails once a migration adds a column under a running worker.
  const bulk = /\bunnest\s*\(|\bANY\s*\(|\*/i.test(text);
  name = bulk || statementNames.size >= PREPARED_MAX ? null : preparedName(text);
  statementNames.set(text, name);
  return name;
}

function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(36) + text.length.toString(36);
}

/**
 * Every query's array values are sent as array literals built here (arrayLiteral: node-postgres' own
 * allocated most of a worker's garbage), whether given as `query(text, values, …)` or as
 * `query({ name, text, values })`; and, when `prepare` is set, `query(text, values)` runs as a
 * named statement where statementName says so.
 */
function wrapQuery(client: pg.PoolClient, prepare: boolean): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const [first, values, ...rest] = args;
    if (typeof first === 'string') {
      if (!Array.isArray(values) || !values.length) return query(...args);
      const name = prepare ? statementName(first) : null;
      const sent = literals(values);
      return name ? query({ name, text: first, values: sent }, ...rest) : query(first, sent, ...rest);
    }
    const config = first as { values?: unknown; submit?: unknown } | null;
    // A submittable (a cursor, a COPY stream) is node-postgres' own object: passed as it is.
    if (typeof config !== 'object' || config === null || typeof config.submit === 'function' || !Array.isArray(config.values)) return query(...args);
    return query({ ...config, values: literals(config.values) }, ...args.slice(1));
  };
}

/** The values with each array replaced by its literal (the same array when none is an array). */
function literals(values: readonly unknown[]): unknown[] {
  return values.some(Array.isArray) ? values.map((v: unknown) => (Array.isArray(v) ? arrayLiteral(v) : v)) : (values as unknown[]);
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

/**
 * pg-pool gave up waiting for a free connection: the pool is saturated, the database may be fine.
 * Not a connection error (it says nothing about the server's health), but worth trying again.
 */
export function isPoolExhausted(error: unknown): boolean {
  return error instanceof Error && /timeout exceeded when trying to connect/i.test(error.message);
}
