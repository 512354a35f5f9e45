import { mkdirSync, rmSync } from 'node:fs';
import { ArbiterError, errorMessage } from '../../src/index.ts';
import type { StackContext } from './context.ts';
import { recordedContainer, removeContainer, startContainer } from './containers.ts';
import { chooseRuntime, containerStartFailure, type Runtime } from './runtime.ts';
import { livePid, stopDaemon } from './daemon.ts';
import { stackFailure } from './failure.ts';
import { waitUntil } from './health.ts';
import { KAFKA_MARKER, probeKafka, startKafka } from './kafka.ts';
import { withStackLock } from './lock.ts';
import { stopSecureKafka, upSecureKafka, type SecureInstallation, type SecureKafka } from './secure-kafka.ts';
import { stackPaths } from './paths.ts';
import {
  POSTGRES_MARKER,
  embeddedPostgresUrl,
  probePostgres,
  redactPassword,
  startEmbeddedPostgres,
} from './postgres.ts';
import {
  REGISTRY_MARKER,
  probeRegistry,
  recordedRegistryStorage,
  registryDatabaseUrl,
  registryStorageEnvironment,
  startRegistry,
} from './registry.ts';
import { ensureDatabase } from '../../src/db/index.ts';
import { DEFAULT_DATABASE_URL, readStackSettings } from './settings.ts';
import { dropDatabase } from '../support/index.ts';
import {
  SERVICE_NAMES,
  type ServiceName,
  type ServiceStatus,
  type StackEndpoints,
  type StackLog,
} from './types.ts';

const MARKERS: Record<ServiceName, string> = {
  kafka: KAFKA_MARKER,
  registry: REGISTRY_MARKER,
  postgres: POSTGRES_MARKER,
};


interface ServiceUp {
  address: string;
  started: boolean;
}

/**
 * Makes Kafka, the registry and Postgres reachable: what already answers is reused, the
 * rest is started. All or nothing: if one service fails, those started by this call are
 * stopped again before the error is thrown.
 */
export async function stackUp(options: StackOptions = {}): Promise<StackEndpoints> {
  const context = createContext(options);
  mkdirSync(context.paths.runDir, { recursive: true });
  return withStackLock(context.paths.lockDir, context.log, async () => {
    const runtime = memoize(() => chooseRuntime(context));
    // The registry stores its schemas in PostgreSQL, so it starts once the database answers.
    const database = upPostgres(context, runtime);
    const registry = database.then(
      (postgres) => upRegistry(context, runtime, postgres.address),
      () => {
        throw stackFailure('registry', 'not started: its storage, PostgreSQL, did not come up');
      },
    );
    const results = await Promise.allSettled([upKafka(context, runtime), registry, database]);
    const started = SERVICE_NAMES.filter((_, index) => {
      const result = results[index];
      return result?.status === 'fulfilled' && result.value.started;
    });
    const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
    if (failures.length > 0) {
      if (started.length > 0) {
        context.log(`stack: stopping ${started.join(', ')} again, since the stack as a whole did not come up`);
        await stopServices(context, started);
      }
      throw failures.length === 1
        ? failures[0]
        : new ArbiterError('STACK_FAILED', failures.map(errorMessage).join('\n\n'), {
            cause: new AggregateError(failures),
          });
    }
    const [, , postgres] = results as Array<PromiseFulfilledResult<ServiceUp>>;
    return {
      kafkaBrokers: context.settings.kafkaBrokers,
      schemaRegistryUrl: context.settings.schemaRegistryUrl,
      databaseUrl: postgres!.value.address,
      started,
    };
  });
}

/** Stops what `stack up` started (all of it, or only `services`); never touches anything else. */
export async function stackDown(options: StackOptions & { services?: ServiceName[] } = {}): Promise<ServiceName[]> {
  const context = createContext(options);
  mkdirSync(context.paths.runDir, { recursive: true });
  return withStackLock(context.paths.lockDir, context.log, async () => {
    const stopped = await stopServices(context, options.services ?? [...SERVICE_NAMES]);
    // A plain `down` stops everything `up` started, the secure broker too.
    if (options.services === undefined) await stopSecureKafka(context);
    return stopped;
  });
}

/**
 * The SASL_SSL broker of `stack up --secure` (beside the plain one, on ARBITER_SECURE_KAFKA_PORT,
 * default 9094), with the installation's topics and ACLs. The registry and PostgreSQL are
 * `stackUp`'s: the CLI calls both.
 */
export async function secureKafkaUp(options: StackOptions & SecureInstallation = {}): Promise<SecureKafka> {
  const context = createContext(options);
  mkdirSync(context.paths.runDir, { recursive: true });
  return withStackLock(context.paths.lockDir, context.log, () => upSecureKafka(context, options));
}

/** Stops the secure broker alone (and removes its data and credentials); undefined when none of ours ran. */
export async function secureKafkaDown(options: StackOptions = {}): Promise<number | undefined> {
  const context = createContext(options);
  mkdirSync(context.paths.runDir, { recursive: true });
  return withStackLock(context.paths.lockDir, context.log, () => stopSecureKafka(context));
}

export async function stackStatus(options: StackOptions = {}): Promise<ServiceStatus[]> {
  const { settings, paths } = createContext(options);
  const postgresAddress =
    settings.databaseUrl ??
    (livePid(paths.pidFile('postgres'), POSTGRES_MARKER) === undefined ? DEFAULT_DATABASE_URL : embeddedPostgresUrl());
  const checks: Record<ServiceName, { address: string; probe: () => Promise<void> }> = {
    kafka: { address: settings.kafkaBrokers.join(','), probe: () => probeKafka(settings.kafkaBrokers, settings.kafkaSecurity) },
    registry: { address: settings.schemaRegistryUrl, probe: () => probeRegistry(settings.schemaRegistryUrl) },
    postgres: { address: postgresAddress, probe: () => probePostgres(postgresAddress) },
  };
  return Promise.all(
    SERVICE_NAMES.map(async (service): Promise<ServiceStatus> => {
      const problem = await problemOf(checks[service].probe);
      const pid = livePid(paths.pidFile(service), MARKERS[service]);
      const containerId = recordedContainer(paths.containerFile(service));
      return {
        service,
        address: checks[service].address,
        reachable: problem === undefined,
        ...(problem === undefined ? {} : { problem }),
        ...(pid === undefined ? {} : { pid }),
        ...(containerId === undefined ? {} : { containerId }),
        logFile: paths.logFile(service),
      };
    }),
  );
}

/** The environment to read settings from (default process.env) and where progress goes. */
export interface StackOptions {
  log?: StackLog;
  env?: NodeJS.ProcessEnv;
  /** Overrides ARBITER_STACK_MODE: local processes, Docker containers, or auto (local where it works). */
  runtime?: 'local' | 'docker' | 'auto';
}

export function createContext(options: StackOptions = {}): StackContext {
  const settings = readStackSettings(options.env);
  if (options.runtime !== undefined) settings.mode = options.runtime === 'docker' ? 'containers' : options.runtime;
  return { settings, paths: stackPaths(settings.cacheDir, settings.runDir), log: options.log ?? (() => undefined) };
}

async function upKafka(context: StackContext, runtime: () => Promise<Runtime>): Promise<ServiceUp> {
  const { settings } = context;
  return reuseOrStart(context, runtime, {
    service: 'kafka',
    address: settings.kafkaBrokers.join(','),
    probe: () => probeKafka(settings.kafkaBrokers, settings.kafkaSecurity),
    notOursToStart: settings.mayStartKafka ? undefined : 'KAFKA_BROKERS',
    startLocally: () => startKafka(context),
  });
}

async function upRegistry(context: StackContext, runtime: () => Promise<Runtime>, databaseUrl: string): Promise<ServiceUp> {
  const { settings } = context;
  return reuseOrStart(context, runtime, {
    service: 'registry',
    address: settings.schemaRegistryUrl,
    probe: () => probeRegistry(settings.schemaRegistryUrl),
    notOursToStart: settings.mayStartRegistry ? undefined : 'SCHEMA_REGISTRY_URL',
    startLocally: () => startRegistry(context, registryDatabaseUrl(databaseUrl, context)),
    containerEnvironment: async () => {
      const storage = registryDatabaseUrl(databaseUrl, context);
      await ensureDatabase(storage);
      // Inside the container, 127.0.0.1 is the container itself.
      const fromContainer = new URL(storage);
      fromContainer.hostname = 'host.docker.internal';
      return registryStorageEnvironment(fromContainer.toString());
    },
  });
}

/**
 * DATABASE_URL when set; else the machine's own server on 5432; else a server of our own:
 * a postgres:16 container on 5432 with Docker, an embedded PostgreSQL on 5433 without.
 */
async function upPostgres(context: StackContext, runtime: () => Promise<Runtime>): Promise<ServiceUp> {
  const { settings, paths, log } = context;
  if (settings.databaseUrl !== undefined) {
    const problem = await problemOf(() => probePostgres(settings.databaseUrl!));
    if (problem !== undefined) {
      throw stackFailure('postgres', `DATABASE_URL ${redactPassword(settings.databaseUrl)} is not reachable`, problem);
    }
    log(`postgres: reusing DATABASE_URL ${redactPassword(settings.databaseUrl)}`);
    return { address: settings.databaseUrl, started: false };
  }
  if ((await problemOf(() => probePostgres(DEFAULT_DATABASE_URL))) === undefined) {
    const owner = recordedContainer(paths.containerFile('postgres')) === undefined ? 'the local server' : 'our container';
    log(`postgres: reusing ${owner} at ${DEFAULT_DATABASE_URL}`);
    return { address: DEFAULT_DATABASE_URL, started: false };
  }
  const embeddedPid = livePid(paths.pidFile('postgres'), POSTGRES_MARKER);
  if (embeddedPid !== undefined) {
    if ((await problemOf(() => probePostgres(embeddedPostgresUrl()))) === undefined) {
      log(`postgres: reusing embedded PostgreSQL (pid ${embeddedPid}) at ${embeddedPostgresUrl()}`);
      return { address: embeddedPostgresUrl(), started: false };
    }
    log(`postgres: embedded PostgreSQL (pid ${embeddedPid}) does not answer; replacing it`);
    await stopDaemon(paths.pidFile('postgres'), POSTGRES_MARKER);
  }
  await removeContainer(paths.containerFile('postgres'));
  if ((await runtime()) === 'containers') {
    await startAndAwaitContainer(context, 'postgres', () => probePostgres(DEFAULT_DATABASE_URL));
    return { address: DEFAULT_DATABASE_URL, started: true };
  }
  await startEmbeddedPostgres(context);
  return { address: embeddedPostgresUrl(), started: true };
}

interface StartableService {
  service: ServiceName;
  address: string;
  probe: () => Promise<void>;
  /** The variable that points elsewhere than our default address, if it does. */
  notOursToStart: string | undefined;
  startLocally: () => Promise<number>;
  /** Settings the container needs beyond its image's defaults. */
  containerEnvironment?: () => Promise<Record<string, string>>;
}

async function reuseOrStart(
  context: StackContext,
  runtime: () => Promise<Runtime>,
  spec: StartableService,
): Promise<ServiceUp> {
  const { paths, log } = context;
  const { service, address } = spec;
  const problem = await problemOf(spec.probe);
  const ourPid = livePid(paths.pidFile(service), MARKERS[service]);
  if (problem === undefined) {
    log(`${service}: reusing ${address}${ourPid === undefined ? '' : ` (pid ${ourPid}, started by stack up)`}`);
    return { address, started: false };
  }
  if (spec.notOursToStart !== undefined) {
    throw stackFailure(
      service,
      `${address} (from ${spec.notOursToStart}) is not reachable, and the stack only starts services on ` +
        `its default loopback address; start it there or unset ${spec.notOursToStart}`,
      problem,
    );
  }
  if (ourPid !== undefined) {
    log(`${service}: our process ${ourPid} is alive but unhealthy (${problem}); replacing it`);
    await stopDaemon(paths.pidFile(service), MARKERS[service]);
  }
  await removeContainer(paths.containerFile(service));
  if ((await runtime()) === 'containers') {
    await startAndAwaitContainer(context, service, spec.probe, await spec.containerEnvironment?.());
  } else {
    await spec.startLocally();
  }
  log(`${service}: ready at ${address}`);
  return { address, started: true };
}

async function startAndAwaitContainer(
  context: StackContext,
  service: ServiceName,
  probe: () => Promise<void>,
  environment?: Record<string, string>,
): Promise<void> {
  let id: string;
  try {
    id = await startContainer(service, context, environment);
  } catch (error) {
    throw await containerStartFailure(context, service, error);
  }
  try {
    await waitUntil(probe);
  } catch (error) {
    await removeContainer(context.paths.containerFile(service));
    throw stackFailure(service, `container ${id} did not become healthy (see \`docker logs ${id}\`)`, error);
  }
}

async function stopServices(context: StackContext, services: ServiceName[]): Promise<ServiceName[]> {
  const { paths, log } = context;
  const stopped: ServiceName[] = [];
  for (const service of services) {
    const pid = await stopDaemon(paths.pidFile(service), MARKERS[service]);
    const containerId = await removeContainer(paths.containerFile(service));
    if (pid !== undefined || containerId !== undefined) {
      stopped.push(service);
      log(`${service}: stopped ${pid === undefined ? `container ${containerId}` : `pid ${pid}`}`);
    }
    if (service === 'kafka') rmSync(paths.kafkaRunDir, { recursive: true, force: true });
    if (service === 'registry' && pid !== undefined) await forgetRegistryStorage(context);
  }
  return stopped;
}

/**
 * The default instance's `apicurio` database outlives `down` (schemas are cheap to keep and the
 * next `up` finds them); a private instance's is dropped with it, so fault runs leave nothing.
 */
async function forgetRegistryStorage(context: StackContext): Promise<void> {
  const storage = recordedRegistryStorage(context);
  if (storage !== undefined && context.settings.privateInstance) {
    await dropDatabase(storage).catch((error: unknown) => context.log(`registry: could not drop ${new URL(storage).pathname.slice(1)}: ${errorMessage(error)}`));
  }
  rmSync(context.paths.registryStorageFile, { force: true });
}

async function problemOf(probe: () => Promise<void>): Promise<string | undefined> {
  try {
    await probe();
    return undefined;
  } catch (error) {
    return errorMessage(error);
  }
}

function memoize<T>(compute: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= compute());
}
