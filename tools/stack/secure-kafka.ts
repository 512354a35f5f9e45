// `stack up --secure`: a second local broker, beside the plain one, that only speaks SASL_SSL and
// authorizes every request (StandardAuthorizer, no ACL = no access). Its CA, certificate, users and
// passwords are made fresh on each start and kept in its run directory, where clients read them.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ConnectionOptions } from 'node:tls';
import kafkajs, { Kafka, logLevel, type AclEntry, type SASLOptions } from 'kafkajs';
import { errorMessage, topicNames } from '../../src/index.ts';
import { makeBrokerCertificates } from './certificates.ts';
import { isAlive, livePid, spawnDaemon, stopDaemon } from './daemon.ts';
import { stackFailure, startFailure } from './failure.ts';
import { probeTcp, waitUntil } from './health.ts';
import { ensureKafkaJars, extraJvmOptionsNote, kafkaJava, kafkaJvmArguments, probeKafka } from './kafka.ts';
import { newKafkaClusterId } from './kafka-config.ts';
import {
  SECURE_USERS,
  arbiterAcls,
  renderSecureServerProperties,
  scramFormatArguments,
  type AclGrant,
  type SecureUser,
} from './secure-kafka-config.ts';
import type { StackContext } from './context.ts';

const execFileAsync = promisify(execFile);
// Node's CommonJS interop does not see these enums as named exports.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

/** In the broker's command line, so a stale pid file never makes us stop a stranger (not a prefix of the plain marker's). */
export const SECURE_KAFKA_MARKER = '-Darbiter.stack=secure-kafka';

/** Users whose credentials clients may be given; the broker's own stay in its server.properties. */
export type ClientUser = Exclude<SecureUser, 'broker'>;
export const CLIENT_USERS: readonly ClientUser[] = ['admin', 'worker', 'agent', 'analyst'];

/** Which installation the ACLs and topics are for: defaults as the workers' (kafka.topicPrefix, kafka.groupId). */
export interface SecureInstallation {
  topicPrefix?: string;
  groupId?: string;
  /** Partitions of the topics the admin creates (kafka.requestPartitions' default). */
  partitions?: number;
}

export interface SecureKafka {
  brokers: string[];
  /** What clients trust: the CA that signed the broker's certificate. */
  caFile: string;
  mechanism: 'scram-sha-512';
  /** One file per user, holding its password (mode 0600). */
  passwordFiles: Record<ClientUser, string>;
  topicPrefix: string;
  groupId: string;
  /** False when a healthy secure broker of ours was already running. */
  started: boolean;
}

const DEFAULT_PARTITIONS = 12;

/** Where a running (or about to run) secure broker keeps what clients need. */
export function secureKafkaFiles(context: StackContext): Omit<SecureKafka, 'topicPrefix' | 'groupId' | 'started'> {
  const dir = context.paths.secureKafkaRunDir;
  return {
    brokers: [`127.0.0.1:${context.settings.ports.secureKafka}`],
    caFile: join(dir, 'tls', 'ca.pem'),
    mechanism: 'scram-sha-512',
    passwordFiles: Object.fromEntries(CLIENT_USERS.map((user) => [user, join(dir, 'credentials', `${user}.password`)])) as Record<ClientUser, string>,
  };
}

/** The variables src/config reads (KAFKA_SSL_* / KAFKA_SASL_*) for one user of the secure broker. */
export function secureClientEnv(secure: Pick<SecureKafka, 'brokers' | 'caFile' | 'passwordFiles'>, user: ClientUser): Record<string, string> {
  return {
    KAFKA_BROKERS: secure.brokers.join(','),
    KAFKA_SSL_CA_FILE: secure.caFile,
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: user,
    KAFKA_SASL_PASSWORD_FILE: secure.passwordFiles[user],
  };
}

/** kafkajs settings for one user (for tools and tests; Arbiter's own clients go through src/config). */
export function secureClientConfig(
  secure: Pick<SecureKafka, 'brokers' | 'caFile' | 'passwordFiles'>,
  user: ClientUser,
): { brokers: string[]; ssl: ConnectionOptions; sasl: SASLOptions } {
  return {
    brokers: secure.brokers,
    ssl: { ca: [readFileSync(secure.caFile, 'utf8')] },
    sasl: { mechanism: 'scram-sha-512', username: user, password: readFileSync(secure.passwordFiles[user], 'utf8').trim() },
  };
}

/**
 * Makes the secure broker answer (reusing ours when it is healthy, else starting a fresh one), then
 * creates the installation's topics and grants its ACLs, both idempotent: a second `up` for another
 * topic prefix adds that installation beside the first. Call under the stack lock.
 */
export async function upSecureKafka(context: StackContext, installation: SecureInstallation = {}): Promise<SecureKafka> {
  const { paths, log } = context;
  const files = secureKafkaFiles(context);
  const ourPid = livePid(paths.secureKafkaPidFile, SECURE_KAFKA_MARKER);
  let started = false;
  const problem = ourPid === undefined ? 'not running' : await probeSecureKafka(context).then(() => undefined, errorMessage);
  if (problem === undefined) {
    log(`secure-kafka: reusing ${files.brokers.join(',')} (pid ${ourPid}, started by stack up --secure)`);
  } else {
    if (ourPid !== undefined) {
      log(`secure-kafka: our process ${ourPid} is unhealthy (${problem}); replacing it`);
      await stopDaemon(paths.secureKafkaPidFile, SECURE_KAFKA_MARKER);
    }
    await probeTcp('127.0.0.1', context.settings.ports.secureKafka).then(
      () => {
        throw stackFailure(
          'kafka',
          `port ${context.settings.ports.secureKafka} is taken by a process this stack did not start; set ARBITER_SECURE_KAFKA_PORT to a free port`,
        );
      },
      () => undefined,
    );
    await startSecureKafka(context);
    started = true;
  }
  const topicPrefix = installation.topicPrefix ?? context.settings.topicPrefix;
  const groupId = installation.groupId ?? context.settings.groupId;
  try {
    await installArbiter(context, { topicPrefix, groupId, partitions: installation.partitions ?? DEFAULT_PARTITIONS });
  } catch (error) {
    if (started) await stopSecureKafka(context);
    throw stackFailure('kafka', `the secure broker is up, but creating the topics and ACLs of ${topicPrefix} failed`, error);
  }
  log(`secure-kafka: topics ${topicPrefix}.* and ACLs for group ${groupId} in place`);
  return { ...files, topicPrefix, groupId, started };
}

/** Stops the secure broker if ours runs, and forgets its data, certificates and credentials. */
export async function stopSecureKafka(context: StackContext): Promise<number | undefined> {
  const pid = await stopDaemon(context.paths.secureKafkaPidFile, SECURE_KAFKA_MARKER);
  if (pid !== undefined) context.log(`secure-kafka: stopped pid ${pid}`);
  rmSync(context.paths.secureKafkaRunDir, { recursive: true, force: true });
  return pid;
}

/** Healthy: a SCRAM login as admin over TLS, then a metadata answer. */
export async function probeSecureKafka(context: StackContext): Promise<void> {
  const files = secureKafkaFiles(context);
  if (!existsSync(files.passwordFiles.admin)) throw new Error(`no admin credentials in ${files.passwordFiles.admin}`);
  const { brokers, ssl, sasl } = secureClientConfig(files, 'admin');
  await probeKafka(brokers, { ssl, sasl });
}

async function startSecureKafka(context: StackContext): Promise<number> {
  const { paths, settings, log } = context;
  await ensureKafkaJars(context);
  const java = await kafkaJava(context);
  const dir = paths.secureKafkaRunDir;
  rmSync(dir, { recursive: true, force: true });
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(join(dir, 'credentials'), { recursive: true, mode: 0o700 });
  const passwords = Object.fromEntries(SECURE_USERS.map((user) => [user, randomBytes(24).toString('hex')])) as Record<SecureUser, string>;
  const files = secureKafkaFiles(context);
  for (const user of CLIENT_USERS) writeFileSync(files.passwordFiles[user], `${passwords[user]}\n`, { mode: 0o600 });
  const certificates = await makeBrokerCertificates(join(dir, 'tls'));
  const propertiesFile = join(dir, 'server.properties');
  writeFileSync(
    propertiesFile,
    renderSecureServerProperties({ dataDir, ...certificates }, settings.ports, passwords),
    { mode: 0o600 },
  );
  const classpath = join(paths.kafkaLibs, '*');
  const clusterId = newKafkaClusterId();
  // The SCRAM users go into the metadata log at format time, before the broker takes any login.
  const format = ['kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propertiesFile, ...scramFormatArguments(passwords)];
  await execFileAsync(java.path, ['-cp', classpath, ...format]).catch((error: unknown) => {
    throw stackFailure('kafka', 'formatting the secure broker\'s storage failed', error);
  });

  log(`secure-kafka: starting a SASL_SSL broker on 127.0.0.1:${settings.ports.secureKafka} (controller ${settings.ports.secureKafkaController}, cluster ${clusterId}${extraJvmOptionsNote(settings)})`);
  const pid = spawnDaemon({
    command: java.path,
    args: [...kafkaJvmArguments(settings), SECURE_KAFKA_MARKER, '-cp', classpath, 'kafka.Kafka', propertiesFile],
    cwd: dir,
    logFile: paths.secureKafkaLogFile,
    pidFile: paths.secureKafkaPidFile,
  });
  try {
    await waitUntil(() => probeSecureKafka(context), {
      giveUpIf: () => (isAlive(pid) ? undefined : `the secure broker process ${pid} exited`),
    });
  } catch (error) {
    await stopSecureKafka(context);
    throw startFailure('kafka', paths.secureKafkaLogFile, error);
  }
  return pid;
}

/** As admin: the installation's topics (when absent), its ACLs, and the group coordinator warmed up. */
async function installArbiter(context: StackContext, installation: Required<SecureInstallation>): Promise<void> {
  const admin = new Kafka({
    clientId: 'arbiter-stack-admin',
    ...secureClientConfig(secureKafkaFiles(context), 'admin'),
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const names = topicNames(installation.topicPrefix);
    const single = new Set([names.deadLetter, names.inconsistencies]);
    const wanted = Object.values(names).filter((topic) => !existing.has(topic));
    if (wanted.length > 0) {
      await admin.createTopics({
        topics: wanted.map((topic) => ({ topic, numPartitions: single.has(topic) ? 1 : installation.partitions, replicationFactor: 1 })),
        waitForLeaders: true,
      });
    }
    await admin.createAcls({ acl: arbiterAcls(installation.topicPrefix, installation.groupId).map(aclEntry) });
    // A fresh broker makes __consumer_offsets on first use; paying it here spares the first consumer seconds of retries.
    await admin.describeGroups([installation.groupId]);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function aclEntry(grant: AclGrant): AclEntry {
  return {
    principal: grant.principal,
    host: '*',
    permissionType: AclPermissionTypes.ALLOW,
    operation: grant.operation === 'read' ? AclOperationTypes.READ : AclOperationTypes.WRITE,
    resourceType: grant.resource === 'topic' ? AclResourceTypes.TOPIC : AclResourceTypes.GROUP,
    resourceName: grant.name,
    resourcePatternType: grant.pattern === 'literal' ? ResourcePatternTypes.LITERAL : ResourcePatternTypes.PREFIXED,
  };
}
