// Local processes or Docker containers: chosen once per `up`, and never silently. A host with a
// Docker engine but no reachable image registry (air-gapped, or a registry mirror down) used to get
// the container path, fail to pull, and give up although the local jars would have worked.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ArbiterError, errorMessage } from '../../src/index.ts';
import { dockerEngineAvailable } from './containers.ts';
import { findJava } from './java.ts';
import { APICURIO_VERSION, KAFKA_VERSION } from './paths.ts';
import { REGISTRY_MIN_JAVA } from './registry.ts';
import type { StackContext } from './context.ts';
import type { ServiceName } from './types.ts';

const execFileAsync = promisify(execFile);

export type Runtime = 'local' | 'containers';

/**
 * `local` and `containers` are taken as asked. `auto` is local whenever the local path can work
 * (a Java for each service, and either the jars already downloaded or Maven to fetch them), and
 * Docker only when it cannot, saying why.
 */
export async function chooseRuntime(context: StackContext): Promise<Runtime> {
  const { settings, log } = context;
  if (settings.mode === 'local') return 'local';
  if (settings.mode === 'containers') {
    if (settings.privateInstance) {
      throw new ArbiterError('STACK_FAILED', 'a private instance (ARBITER_STACK_RUN_DIR) runs local processes only: use --runtime local');
    }
    if (!(await dockerEngineAvailable())) {
      throw new ArbiterError('STACK_FAILED', '--runtime docker (ARBITER_STACK_MODE=containers), but no Docker engine answers `docker info`');
    }
    log('stack: runtime docker, as asked');
    return 'containers';
  }
  const problem = await localPathProblem(context);
  if (problem === undefined) {
    log('stack: runtime local (Java and the jars path work here; --runtime docker to use containers)');
    return 'local';
  }
  if (!settings.privateInstance && (await dockerEngineAvailable())) {
    log(`stack: the local path cannot work (${problem}); a Docker engine answers, so runtime docker`);
    return 'containers';
  }
  throw new ArbiterError('STACK_FAILED', `cannot start services locally: ${problem}; and no Docker engine answers \`docker info\``);
}

/** Why local processes cannot start here, or undefined when they can. */
export async function localPathProblem(context: StackContext): Promise<string | undefined> {
  const { settings, paths } = context;
  try {
    await findJava({
      purpose: `Kafka ${KAFKA_VERSION}`,
      minMajor: 17,
      override: { name: 'ARBITER_KAFKA_JAVA', path: settings.kafkaJava },
      javaHome: settings.javaHome,
      preferInstalledJdks: false,
    });
    await findJava({
      purpose: `Apicurio Registry ${APICURIO_VERSION}`,
      minMajor: REGISTRY_MIN_JAVA,
      override: { name: 'ARBITER_REGISTRY_JAVA', path: settings.registryJava },
      javaHome: settings.javaHome,
      preferInstalledJdks: true,
    });
  } catch (error) {
    return errorMessage(error);
  }
  const downloaded = existsSync(paths.kafkaLibs) && existsSync(join(paths.apicurioHome, 'quarkus-run.jar'));
  if (downloaded) return undefined;
  try {
    await execFileAsync('mvn', ['--version'], { timeout: 30_000 });
    return undefined;
  } catch {
    return 'the Kafka and Apicurio jars are not downloaded yet and `mvn` is not on PATH';
  }
}

/**
 * A container that did not start is most often an image that could not be pulled: say what the
 * local path would need instead of leaving the testcontainers error alone.
 */
export async function containerStartFailure(context: StackContext, service: ServiceName, error: unknown): Promise<ArbiterError> {
  const local = await localPathProblem(context);
  const advice =
    local === undefined
      ? 'the local path works on this machine: run `arbiter stack up --runtime local`'
      : `the local path cannot work either: ${local}`;
  return new ArbiterError(
    'STACK_FAILED',
    `${service}: the Docker runtime could not start its container (is an image registry reachable to pull from?): ` +
      `${errorMessage(error)}\n${advice}`,
    { cause: error },
  );
}
