import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isAlive, spawnDaemon, stopDaemon } from './daemon.ts';
import { startFailure } from './failure.ts';
import { probeHttpJson, waitUntil } from './health.ts';
import { findJava } from './java.ts';
import { DEPENDENCY_PLUGIN, buildAtomically, runMaven } from './maven.ts';
import { APICURIO_VERSION } from './paths.ts';
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

export async function startRegistry(context: StackContext): Promise<number> {
  const { paths, settings, log } = context;
  await ensureApicurio(context);
  const java = await findJava({
    purpose: `Apicurio Registry ${APICURIO_VERSION}`,
    minMajor: REGISTRY_MIN_JAVA,
    override: { name: 'ARBITER_REGISTRY_JAVA', path: settings.registryJava },
    javaHome: settings.javaHome,
    preferInstalledJdks: true,
  });
  log(
    `registry: starting Apicurio on 127.0.0.1:${settings.ports.registry} ` +
      `(health on ${settings.ports.registryManagement}, Java ${java.major} at ${java.path})`,
  );
  const logFile = paths.logFile('registry');
  const pidFile = paths.pidFile('registry');
  const pid = spawnDaemon({
    command: java.path,
    args: ['-Xmx512m', REGISTRY_MARKER, '-jar', 'quarkus-run.jar'],
    cwd: paths.apicurioHome,
    env: { ...process.env, ...registryEnvironment(settings.ports) },
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
