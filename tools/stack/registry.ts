import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isAlive, spawnDaemon, stopDaemon } from './daemon.ts';
import { startFailure } from './failure.ts';
import { probeHttpJson, waitUntil } from './health.ts';
import { findJava } from './java.ts';
import { DEPENDENCY_PLUGIN, buildAtomically, runMaven } from './maven.ts';
import { APICURIO_VERSION } from './paths.ts';
import { ensureDatabase } from '../../src/db/index.ts';
import { databaseUrlFor } from '../support/index.ts';
import type { StackContext } from './context.ts';

const execFileAsync = promisify(execFile);

export const REGISTRY_MARKER = '-Darbiter.stack=registry';
export const REGISTRY_HTTP_PORT = 8081;
/** Quarkus serves /health on a separate management port (default 9000, often taken). */
export const REGISTRY_MANAGEMENT_PORT = 9081;
/** Apicurio 3.3.x is built for Java 21 (class file 65); Java 17 fails with UnsupportedClassVersionError. */
export const REGISTRY_MIN_JAVA = 21;

export function registryEnvironment(
  ports: { registry: number; registryManagement: number } = { registry: REGISTRY_HTTP_PORT, registryManagement: REGISTRY_MANAGEMENT_PORT },
): Record<string, string> {
  return {
    QUARKUS_HTTP_HOST: '127.0.0.1',
    QUARKUS_HTTP_PORT: String(ports.registry),
    QUARKUS_MANAGEMENT_HOST: '127.0.0.1',
    QUARKUS_MANAGEMENT_PORT: String(ports.registryManagement),
  };
}

/**
 * Where the registry keeps its schemas: a database of its own on the stack's PostgreSQL server.
 * `apicurio` for the default instance; a private instance (ARBITER_STACK_RUN_DIR) gets one named
 * after its run directory, so two instances never share ids.
 */
export function registryDatabaseUrl(serverUrl: string, context: Pick<StackContext, 'settings'>): string {
  const { settings } = context;
  const name = settings.privateInstance
    ? `apicurio_${createHash('sha256').update(settings.runDir).digest('hex').slice(0, 10)}`
    : 'apicurio';
  return databaseUrlFor(serverUrl, name);
}

/**
 * Apicurio's SQL storage on PostgreSQL (its default is an in-memory H2 that forgets every schema
 * id on restart, after which each record framed with an old id fails to decode). A small pool:
 * the default of 20 idle connections would crowd a shared test server.
 */
export function registryStorageEnvironment(storageUrl: string): Record<string, string> {
  const url = new URL(storageUrl);
  const database = decodeURIComponent(url.pathname.slice(1));
  return {
    APICURIO_STORAGE_KIND: 'sql',
    APICURIO_STORAGE_SQL_KIND: 'postgresql',
    APICURIO_DATASOURCE_URL: `jdbc:postgresql://${url.hostname}:${url.port || '5432'}/${database}`,
    APICURIO_DATASOURCE_USERNAME: decodeURIComponent(url.username) || 'postgres',
    // Trust authentication ignores it; an empty value would fall back to Apicurio's default.
    APICURIO_DATASOURCE_PASSWORD: decodeURIComponent(url.password) || 'unused',
    APICURIO_DATASOURCE_JDBC_INITIAL_SIZE: '2',
    APICURIO_DATASOURCE_JDBC_MIN_SIZE: '2',
    APICURIO_DATASOURCE_JDBC_MAX_SIZE: '10',
  };
}

/** The storage database recorded at the last start, so a restart comes back on the same one. */
export function recordedRegistryStorage({ paths }: Pick<StackContext, 'paths'>): string | undefined {
  return existsSync(paths.registryStorageFile) ? readFileSync(paths.registryStorageFile, 'utf8').trim() || undefined : undefined;
}

/** `apiUrl` is the Confluent-compatible API root that clients use, so that is what must answer. */
export async function probeRegistry(apiUrl: string): Promise<void> {
  const subjects = await probeHttpJson(`${apiUrl}/subjects`);
  if (!Array.isArray(subjects)) throw new Error('GET /subjects did not answer with a list');
}

export async function ensureApicurio({ paths, log }: StackContext): Promise<void> {
  if (existsSync(join(paths.apicurioHome, 'quarkus-run.jar'))) return;
  log(`registry: downloading Apicurio Registry ${APICURIO_VERSION} (~160 MB) from Maven Central into ${paths.apicurioHome}`);
  await buildAtomically(paths.apicurioHome, async (staging) => {
    const artifact = `io.apicurio:apicurio-registry-app:${APICURIO_VERSION}:tar.gz:all`;
    await runMaven([`${DEPENDENCY_PLUGIN}:copy`, `-Dartifact=${artifact}`, '-DoutputDirectory=.'], staging);
    const archive = readdirSync(staging).find((name) => name.endsWith('.tar.gz'));
    if (archive === undefined) throw new Error(`mvn did not leave a .tar.gz in ${staging}`);
    await execFileAsync('tar', ['xzf', archive], { cwd: staging });
    // ~/.m2 keeps the archive; a second copy here would only waste 160 MB.
    rmSync(join(staging, archive));
  });
}

/** `storageUrl`: the PostgreSQL database for its schemas, created if absent. */
export async function startRegistry(context: StackContext, storageUrl: string): Promise<number> {
  const { paths, settings, log } = context;
  await ensureApicurio(context);
  await ensureDatabase(storageUrl);
  writeFileSync(paths.registryStorageFile, `${storageUrl}\n`);
  const java = await findJava({
    purpose: `Apicurio Registry ${APICURIO_VERSION}`,
    minMajor: REGISTRY_MIN_JAVA,
    override: { name: 'ARBITER_REGISTRY_JAVA', path: settings.registryJava },
    javaHome: settings.javaHome,
    preferInstalledJdks: true,
  });
  log(
    `registry: starting Apicurio on 127.0.0.1:${settings.ports.registry} ` +
      `(health on ${settings.ports.registryManagement}, Java ${java.major} at ${java.path}, ` +
      `schemas in database ${new URL(storageUrl).pathname.slice(1)})`,
  );
  const logFile = paths.logFile('registry');
  const pidFile = paths.pidFile('registry');
  const pid = spawnDaemon({
    command: java.path,
    args: ['-Xmx512m', REGISTRY_MARKER, '-jar', 'quarkus-run.jar'],
    cwd: paths.apicurioHome,
    env: { ...process.env, ...registryEnvironment(settings.ports), ...registryStorageEnvironment(storageUrl) },
    logFile,
    pidFile,
  });
  const giveUpIf = (): string | undefined => (isAlive(pid) ? undefined : `the registry process ${pid} exited`);
  try {
    await waitUntil(async () => {
      const health = await probeHttpJson(`http://127.0.0.1:${settings.ports.registryManagement}/health/ready`);
      const status = (health as { status?: unknown }).status;
      if (status !== 'UP') throw new Error(`/health/ready says ${String(status)}`);
    }, { giveUpIf });
    await waitUntil(() => probeRegistry(settings.schemaRegistryUrl), { giveUpIf, timeoutMs: 30_000 });
  } catch (error) {
    await stopDaemon(pidFile, REGISTRY_MARKER);
    throw startFailure('registry', logFile, error);
  }
  return pid;
}
