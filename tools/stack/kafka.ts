import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { spawnDaemon, isAlive, stopDaemon } from './daemon.ts';
import { stackFailure, startFailure } from './failure.ts';
import { probeTcp, waitUntil } from './health.ts';
import { findJava, type JavaInstall } from './java.ts';
import { KAFKA_G1_OPTIONS, newKafkaClusterId, renderKafkaPom, renderServerProperties } from './kafka-config.ts';
import { DEPENDENCY_PLUGIN, buildAtomically, runMaven } from './maven.ts';
import { KAFKA_VERSION } from './paths.ts';
import { splitHostPort, type StackSettings } from './settings.ts';
import type { KafkaSecurityOptions } from '../../src/index.ts';
import type { StackContext } from './context.ts';

const execFileAsync = promisify(execFile);

/** Appears in the broker's command line, so a stale pid file never makes us kill a stranger. */
export const KAFKA_MARKER = '-Darbiter.stack=kafka';

/** Healthy means a broker answers metadata requests, not merely that the port is open. */
export async function probeKafka(brokers: string[], security: KafkaSecurityOptions = {}): Promise<void> {
  const addresses = brokers.map(splitHostPort);
  await Promise.any(addresses.map(({ host, port }) => probeTcp(host, port))).catch(() => {
    throw new Error(`nothing accepts TCP connections at ${brokers.join(',')}`);
  });
  const admin = new Kafka({
    clientId: 'arbiter-stack-probe',
    brokers,
    ...security,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    requestTimeout: 5_000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    if (cluster.brokers.length === 0) throw new Error('the cluster reports no brokers');
  } catch (error) {
    throw new Error(`the Kafka metadata request failed: ${(error as Error).message}`, { cause: error });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * A fresh broker creates __consumer_offsets and __transaction_state on first use, and the
 * first consumer group or transactional producer then waits seconds for "coordinator not
 * available" retries. Paying that once here keeps it out of every test's first run.
 */
async function warmUpCoordinators(brokers: string[]): Promise<void> {
  const kafka = new Kafka({ clientId: 'arbiter-stack-warm-up', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer({ transactionalId: 'arbiter-stack-warm-up', idempotent: true, maxInFlightRequests: 1 });
  try {
    await admin.connect();
    await admin.describeGroups(['arbiter-stack-warm-up']);
    await producer.connect();
    // The first transaction asks the transaction coordinator for a producer id.
    const transaction = await producer.transaction();
    await transaction.abort();
  } catch (error) {
    throw new Error(`the group and transaction coordinators did not come up: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

export async function ensureKafkaJars({ paths, log }: StackContext): Promise<void> {
  if (existsSync(paths.kafkaLibs)) return;
  log(`kafka: downloading Kafka ${KAFKA_VERSION} jars from Maven Central into ${paths.kafkaLibs}`);
  await buildAtomically(paths.kafkaHome, async (staging) => {
    writeFileSync(join(staging, 'pom.xml'), renderKafkaPom());
    await runMaven(
      [`${DEPENDENCY_PLUGIN}:copy-dependencies`, '-DoutputDirectory=libs', '-DincludeScope=runtime'],
      staging,
    );
  });
}

/** The Java the brokers run on (17+: ARBITER_KAFKA_JAVA, JAVA_HOME, PATH, then installed JDKs). */
export function kafkaJava({ settings }: StackContext): Promise<JavaInstall> {
  return findJava({
    purpose: `Kafka ${KAFKA_VERSION}`,
    minMajor: 17,
    override: { name: 'ARBITER_KAFKA_JAVA', path: settings.kafkaJava },
    javaHome: settings.javaHome,
    preferInstalledJdks: false,
  });
}

/** The broker's JVM: small heap, G1 (KAFKA_G1_OPTIONS says how, and why), log lines with their time. */
export const KAFKA_JVM_OPTIONS = [
  '-Xmx512m',
  ...KAFKA_G1_OPTIONS,
  '-Djava.awt.headless=true',
  '-Dorg.slf4j.simpleLogger.showDateTime=true',
  "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
];

/** What a broker's start line says about ARBITER_KAFKA_JVM_OPTIONS: nothing when there are none. */
export function extraJvmOptionsNote(settings: Pick<StackSettings, 'kafkaJvmOptions'>): string {
  return settings.kafkaJvmOptions.length ? `, JVM options ${settings.kafkaJvmOptions.join(' ')}` : '';
}

/** The JVM options a local broker starts with: the defaults, then ARBITER_KAFKA_JVM_OPTIONS (later options win). */
export function kafkaJvmArguments(settings: Pick<StackSettings, 'kafkaJvmOptions'>): string[] {
  return [...KAFKA_JVM_OPTIONS, ...settings.kafkaJvmOptions];
}

/**
 * `stack up` starts a fresh cluster: a new data directory and cluster id, nothing left to
 * reconcile. A restart (`keepData`) starts the same broker on the data it left: topics, records
 * and committed offsets survive, as after a real broker restart.
 */
export async function startKafka(context: StackContext, options: { keepData?: boolean } = {}): Promise<number> {
  const { paths, settings, log } = context;
  await ensureKafkaJars(context);
  const java = await kafkaJava(context);
  const dataDir = join(paths.kafkaRunDir, 'data');
  const propertiesFile = join(paths.kafkaRunDir, 'server.properties');
  const classpath = join(paths.kafkaLibs, '*');
  const formatted = existsSync(join(dataDir, 'meta.properties'));
  if (options.keepData === true && !formatted) {
    throw stackFailure('kafka', `there is no broker data in ${dataDir} to restart on`);
  }
  let cluster = 'existing cluster, data kept';
  if (options.keepData !== true) {
    rmSync(paths.kafkaRunDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(propertiesFile, renderServerProperties(dataDir, settings.ports));
    const clusterId = newKafkaClusterId();
    const format = ['kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propertiesFile, '--ignore-formatted'];
    await execFileAsync(java.path, ['-cp', classpath, ...format]).catch((error: unknown) => {
      throw stackFailure('kafka', 'formatting the storage directory failed', error);
    });
    cluster = `cluster ${clusterId}`;
  }

  log(`kafka: starting broker on 127.0.0.1:${settings.ports.kafka} (Java ${java.major}, ${cluster}${extraJvmOptionsNote(settings)})`);
  const logFile = paths.logFile('kafka');
  const pidFile = paths.pidFile('kafka');
  const pid = spawnDaemon({
    command: java.path,
    args: [
      ...kafkaJvmArguments(settings),
      KAFKA_MARKER,
      '-cp',
      classpath,
      'kafka.Kafka',
      propertiesFile,
    ],
    cwd: paths.kafkaRunDir,
    logFile,
    pidFile,
  });
  try {
    await waitUntil(() => probeKafka(settings.kafkaBrokers), {
      giveUpIf: () => (isAlive(pid) ? undefined : `the broker process ${pid} exited`),
    });
    await warmUpCoordinators(settings.kafkaBrokers);
  } catch (error) {
    await stopDaemon(pidFile, KAFKA_MARKER);
    throw startFailure('kafka', logFile, error);
  }
  return pid;
}
