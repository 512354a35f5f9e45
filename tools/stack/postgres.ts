import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { isAlive, spawnDaemon, stopDaemon } from './daemon.ts';
import { startFailure } from './failure.ts';
import { waitUntil } from './health.ts';
import { EMBEDDED_POSTGRES_PORT } from './settings.ts';
import { maintenanceUrl, nodeScript, REPO_ROOT, siblingModule } from '../support/index.ts';
import type { StackContext } from './context.ts';

const EMBEDDED_MAIN = siblingModule(import.meta.url, 'embedded-postgres-main');

/**
 * The keeper's script path is in its command line; that is how a stale pid is told apart. No
 * extension: the keeper runs as .ts from the sources and as .js when built.
 */
export const POSTGRES_MARKER = 'embedded-postgres-main';
/** Only ever listens on loopback, and the server is thrown away on `stack down`. */
const EMBEDDED_PASSWORD = 'arbiter';

export function embeddedPostgresUrl(database = 'arbiter'): string {
  return `postgres://postgres:${EMBEDDED_PASSWORD}@127.0.0.1:${EMBEDDED_POSTGRES_PORT}/${database}`;
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
    args: [...nodeScript(EMBEDDED_MAIN), String(EMBEDDED_POSTGRES_PORT), dataDir, EMBEDDED_PASSWORD],
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
