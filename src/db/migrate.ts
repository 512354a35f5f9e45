import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { packagePath } from '../package-files.ts';
import { pgConnectionString } from './pool.ts';

export const MIGRATIONS_DIR = packagePath('migrations');

/** Creates the database named in the URL when it is missing, connecting to the server's `postgres` database. */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres';
  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: pgConnectionString(maintenance.toString()) });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } catch (error) {
      // Two processes migrating at once: the loser sees duplicate_database, which is fine.
      if ((error as { code?: string }).code !== '42P04') throw error;
    }
    return true;
  } finally {
    await client.end();
  }
}

export interface MigrateResult {
  createdDatabase: boolean;
  applied: string[];
  /** What migrate did to the role `arbiter_analyst`: gave it LOGIN with a password, made it NOLOGIN, or left it alone. */
  analystLogin: 'enabled' | 'disabled' | 'unchanged';
}

export interface MigrateOptions {
  partitionMonthsAhead?: number;
  /**
   * The password of the read-only role `arbiter_analyst` (config audit.analystPassword): a string
   * gives it LOGIN with that password, null makes it NOLOGIN, and leaving it out does not touch
   * the role. The role belongs to the whole server, not to this database: the last migrate that
   * sets it wins for every database on the server.
   */
  analystPassword?: string | null;
}

/**
 * Applies pending migrations under node-pg-migrate's advisory lock, so two pods never migrate at
 * once; running it when current is a no-op. Partitions for the coming months are ensured each time.
 */
export async function migrate(
  databaseUrl: string,
  log: (line: string) => void = () => {},
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const createdDatabase = await ensureDatabase(databaseUrl);
  const applied = await runner({
    databaseUrl: pgConnectionString(databaseUrl),
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'migrations',
    migrationsSchema: 'arbiter',
    createMigrationsSchema: true,
    checkOrder: true,
    log: (message: string) => log(message),
    logger: migrationLogger(log),
  });
  const client = new pg.Client({ connectionString: pgConnectionString(databaseUrl) });
  await client.connect();
  try {
    await client.query('SELECT arbiter.ensure_partitions($1)', [options.partitionMonthsAhead ?? 2]);
    if (options.analystPassword !== undefined) await setAnalystLogin(client, options.analystPassword);
  } finally {
    await client.end();
  }
  const analystLogin = options.analystPassword === undefined ? 'unchanged' : options.analystPassword === null ? 'disabled' : 'enabled';
  return { createdDatabase, applied: applied.map((m) => m.name), analystLogin };
}

/**
 * node-pg-migrate's logger, passing its warnings and errors on. Our files are numbered (0001_…),
 * not timestamped, and node-pg-migrate complains about each of them on every run — as a warning
 * in 7.x, as an error in 8.x — and orders them by that number all the same: dropped.
 */
export function migrationLogger(log: (line: string) => void): Record<'debug' | 'info' | 'warn' | 'error', (message: string) => void> {
  const pass = (m: string) => {
    if (!m.startsWith("Can't determine timestamp")) log(m);
  };
  return { debug: () => {}, info: () => {}, warn: pass, error: pass };
}

/** The LOGIN role that may read the analyst views only (migrations/0008_analyst-role.sql). */
export const ANALYST_ROLE = 'arbiter_analyst';

/**
 * Gives `arbiter_analyst` LOGIN with this password, or takes LOGIN away (null). The password is
 * sent as a SCRAM-SHA-256 verifier computed here, so the plain text never reaches the server (its
 * statement log, pg_stat_activity); a password outside printable ASCII, where the server's SASLprep
 * could differ from ours, is sent as a quoted literal and hashed by the server.
 */
export async function setAnalystLogin(client: pg.Client | pg.PoolClient, password: string | null): Promise<void> {
  const role = pg.escapeIdentifier(ANALYST_ROLE);
  const secret = password === null ? null : /^[\x20-\x7e]*$/.test(password) ? scramSha256Verifier(password) : password;
  const sql = secret === null ? `ALTER ROLE ${role} NOLOGIN PASSWORD NULL` : `ALTER ROLE ${role} LOGIN PASSWORD ${pg.escapeLiteral(secret)}`;
  // Two databases of one server migrating at once alter the same shared row: the loser sees
  // "tuple concurrently updated" and tries again.
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query(sql);
      return;
    } catch (error) {
      if (attempt >= 5 || !/tuple concurrently updated/.test((error as Error).message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

/**
 * A PostgreSQL SCRAM-SHA-256 password verifier (RFC 5802/7677, the form pg_authid stores):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
 */
export function scramSha256Verifier(password: string, options: { salt?: Buffer; iterations?: number } = {}): string {
  const salt = options.salt ?? randomBytes(16);
  const iterations = options.iterations ?? 4096;
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
