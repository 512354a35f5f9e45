import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { isAlive, spawnDaemon, stopDaemon } from './daemon.ts';
import { startFailure } from './failure.ts';
import { waitUntil } from './health.ts';
import { EMBEDDED_POSTGRES_PORT } from './settings.ts';
import type { StackContext } from './context.ts';

const EMBEDDED_MAIN = fileURLToPath(new URL('./embedded-postgres-main.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The keeper's script path is in its command line; that is how a stale pid is told apart. */
export const POSTGRES_MARKER = 'embedded-postgres-main.ts';
/** Only ever listens on loopback, and the server is thrown away on `stack down`. */
const EMBEDDED_PASSWORD = 'arbiter';

export function embeddedPostgresUrl(database = 'arbiter'): string {
  return `postgres://postgres:${EMBEDDED_PASSWORD}@127.0.0.1:${EMBEDDED_POSTGRES_PORT}/${database}`;
}

/** The same server's `postgres` database: the application database may not exist before `migrate`. */
export function maintenanceUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  return url.toString();
}

export async function probePostgres(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: maintenanceUrl(databaseUrl), connectionTimeoutMillis: 3_000 });
  // A server that drops the connection later must not crash the process through an unhandled 'error'.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(`cannot run SELECT 1 on ${redactPassword(maintenanceUrl(databaseUrl))}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function redactPassword(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  if (url.password !== '') url.password = '***';
  return url.toString();
}

/**
 * embedded-postgres stops its server when the Node process that started it exits, so a
 * small detached keeper process owns it; SIGTERM to the keeper stops the server and
 * deletes its data directory.
 */
export async function startEmbeddedPostgres({ paths, log }: StackContext): Promise<number> {
  // A path that does not exist yet: initdb, running as the unprivileged postgres user when
  // we are root, creates it inside the world-writable temporary directory.
  const dataDir = join(tmpdir(), `arbiter-pg-${randomBytes(6).toString('hex')}`);
  log(`postgres: nothing on 127.0.0.1:5432; starting embedded PostgreSQL on 127.0.0.1:${EMBEDDED_POSTGRES_PORT} (data in ${dataDir})`);
  const logFile = paths.logFile('postgres');
  const pidFile = paths.pidFile('postgres');
  const pid = spawnDaemon({
    command: process.execPath,
    args: ['--import', 'tsx', EMBEDDED_MAIN, String(EMBEDDED_POSTGRES_PORT), dataDir, EMBEDDED_PASSWORD],
    // `--import tsx` resolves from the working directory, where node_modules is.
    cwd: REPO_ROOT,
    logFile,
    pidFile,
  });
  try {
    await waitUntil(() => probePostgres(embeddedPostgresUrl()), {
      giveUpIf: () => (isAlive(pid) ? undefined : `the embedded-postgres keeper ${pid} exited`),
    });
  } catch (error) {
    await stopDaemon(pidFile, POSTGRES_MARKER);
    throw startFailure('postgres', logFile, error);
  }
  return pid;
}
