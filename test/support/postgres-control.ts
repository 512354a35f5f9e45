import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { endpoints } from './harness.ts';

const exec = promisify(execFile);

/**
 * Restarts the PostgreSQL server the tests use, the way an operator would (`pg_ctlcluster …
 * restart`). Only a Debian cluster on this machine can be restarted so; anything else is a loud
 * failure naming what was found, never a skipped test.
 */
export async function restartPostgres(): Promise<{ tookMs: number }> {
  const port = Number(new URL(endpoints.databaseUrl).port || 5432);
  const listing = await exec('pg_lsclusters', ['--no-header']).catch((error: Error) => {
    throw new Error(`cannot restart PostgreSQL: pg_lsclusters failed (${error.message}); these tests need the machine's Debian cluster on port ${port}`);
  });
  const cluster = listing.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => Number(fields[2]) === port && fields[3] === 'online');
  if (!cluster) throw new Error(`cannot restart PostgreSQL: no online Debian cluster on port ${port} in:\n${listing.stdout}`);
  const started = Date.now();
  await exec('pg_ctlcluster', [cluster[0]!, cluster[1]!, 'restart', '-m', 'fast']);
  return { tookMs: Date.now() - started };
}
