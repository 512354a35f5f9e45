import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { packagePath } from '../package-files.ts';

export const MIGRATIONS_DIR = packagePath('migrations');

/** Creates the database named in the URL when it is missing, connecting to the server's `postgres` database. */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres';
  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenance.toString() });
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
}

/**
 * Applies pending migrations under node-pg-migrate's advisory lock, so two pods never migrate at
 * once; running it when current is a no-op. Partitions for the coming months are ensured each time.
 */
export async function migrate(
  databaseUrl: string,
  log: (line: string) => void = () => {},
  options: { partitionMonthsAhead?: number } = {},
): Promise<MigrateResult> {
  const createdDatabase = await ensureDatabase(databaseUrl);
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'migrations',
    migrationsSchema: 'arbiter',
    createMigrationsSchema: true,
    checkOrder: true,
    log: (message: string) => log(message),
    // Our files are numbered (0001_…), not timestamped; node-pg-migrate warns about that on every run.
    logger: {
      debug: () => {},
      info: () => {},
      warn: (m: string) => (m.startsWith("Can't determine timestamp") ? undefined : log(m)),
      error: (m: string) => log(m),
    },
  });
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('SELECT arbiter.ensure_partitions($1)', [options.partitionMonthsAhead ?? 2]);
  } finally {
    await client.end();
  }
  return { createdDatabase, applied: applied.map((m) => m.name) };
}
