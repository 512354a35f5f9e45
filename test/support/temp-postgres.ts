import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const POSTGRES_ROOT = '/usr/lib/postgresql';

export interface TempPostgres {
  port: number;
  /** The cluster's temporary directory (data in data/, log in server.log); files put here before start are readable by the server. */
  dir: string;
  /** Runs a PostgreSQL client program of the same version (psql …) as the server's OS user, over the Unix socket. */
  client(program: string, args: string[]): Promise<{ stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export interface TempPostgresOptions {
  /** pg_hba.conf, whole. */
  hba: string;
  /** More postgresql.conf lines. */
  settings?: string[];
  /** Called with the directory before initdb, to put certificates there. */
  prepare?: (dir: string) => Promise<void>;
}

/**
 * A throw-away PostgreSQL cluster: initdb into a temporary directory, its own free port, listening
 * on 127.0.0.1 (and 127.0.0.2) and a socket in that directory. Never the shared server: for tests
 * that must change the server's configuration (TLS, pg_hba) or create roles, which are server-wide.
 * Missing server binaries are a loud failure.
 */
export async function startTempPostgres(options: TempPostgresOptions): Promise<TempPostgres> {
  const bin = await postgresBin();
  const dir = await mkdtemp(join(tmpdir(), 'arbiter-pg-temp-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  // initdb refuses to run as root: the cluster then belongs to the unprivileged postgres user.
  const asRoot = process.getuid?.() === 0;
  const run = (command: string, args: string[]) => (asRoot ? exec('runuser', ['-u', 'postgres', '--', command, ...args]) : exec(command, args));
  let started = false;
  const stop = async () => {
    if (started) await run(join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    started = false;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await options.prepare?.(dir);
    if (asRoot) await exec('chown', ['-R', 'postgres:postgres', dir]);
    await run(join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    await writeFile(join(dataDir, 'pg_hba.conf'), options.hba);
    const settings = [`listen_addresses = '127.0.0.1,127.0.0.2'`, `port = ${port}`, `unix_socket_directories = '${dir}'`, 'fsync = off', ...(options.settings ?? [])];
    await appendFile(join(dataDir, 'postgresql.conf'), `${settings.join('\n')}\n`);
    await run(join(bin, 'pg_ctl'), ['-D', dataDir, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    started = true;
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    port,
    dir,
    client: (program, args) => run(join(bin, program), ['-h', dir, '-p', String(port), ...args]),
    stop,
  };
}

/** The newest PostgreSQL server binaries installed (Debian layout). */
async function postgresBin(): Promise<string> {
  const versions = (await readdir(POSTGRES_ROOT).catch(() => [] as string[])).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no PostgreSQL server binaries under ${POSTGRES_ROOT}/<version>/bin (apt-get install postgresql)`);
  return join(POSTGRES_ROOT, versions[0]!, 'bin');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
