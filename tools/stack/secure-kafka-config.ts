// What the secure broker (`stack up --secure`) is made of, as plain data: its server.properties,
// its users and the ACLs that give each of them least privilege. Pure, so it is unit-tested apart
// from a running broker; tools/stack/secure-kafka.ts starts and configures the broker with it.
import { topicNames } from '../../src/index.ts';
import { renderProperties, singleNodeSettings } from './kafka-config.ts';

/**
 * SCRAM users made at format time. `broker` is the broker's own identity (inter-broker and
 * controller links), `admin` the operator's (topics, ACLs); both are super users. `worker`,
 * `agent` and `analyst` get what the ACLs below give them, and nothing else.
 */
export const SECURE_USERS = ['broker', 'admin', 'worker', 'agent', 'analyst'] as const;
export type SecureUser = (typeof SECURE_USERS)[number];
export const SUPER_USERS: readonly SecureUser[] = ['broker', 'admin'];

/** Agents' outcome and plan-event tails use one throw-away group each (src/agent-sdk/topic-tail.ts). */
export const SDK_GROUP_PREFIX = 'arbiter-sdk-';

export interface SecureBrokerFiles {
  dataDir: string;
  /** PKCS12 keystore holding the broker's key and certificate chain. */
  keystoreFile: string;
  keystorePassword: string;
  /** The CA (PEM) the broker trusts when it connects to its own controller over TLS. */
  caFile: string;
}

/**
 * One node, two listeners, both TLS: SASL_SSL with SCRAM-SHA-512 for clients and the broker
 * itself, and the controller listener with SASL PLAIN (KRaft controllers cannot use SCRAM: the
 * credentials live in the metadata log they serve). Every request passes the StandardAuthorizer,
 * and a resource without ACLs is closed to everyone but the super users.
 */
export function renderSecureServerProperties(
  files: SecureBrokerFiles,
  ports: { secureKafka: number; secureKafkaController: number },
  passwords: Pick<Record<SecureUser, string>, 'broker'>,
): string {
  const scram = jaas('org.apache.kafka.common.security.scram.ScramLoginModule', { username: 'broker', password: passwords.broker });
  const plain = jaas('org.apache.kafka.common.security.plain.PlainLoginModule', {
    username: 'broker',
    password: passwords.broker,
    user_broker: passwords.broker,
  });
  return renderProperties({
    ...singleNodeSettings(files.dataDir, ports.secureKafkaController),
    listeners: `SASL_SSL://127.0.0.1:${ports.secureKafka},CONTROLLER://127.0.0.1:${ports.secureKafkaController}`,
    'advertised.listeners': `SASL_SSL://127.0.0.1:${ports.secureKafka}`,
    'listener.security.protocol.map': 'SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL',
    'inter.broker.listener.name': 'SASL_SSL',
    'sasl.mechanism.inter.broker.protocol': 'SCRAM-SHA-512',
    'sasl.mechanism.controller.protocol': 'PLAIN',
    'listener.name.sasl_ssl.sasl.enabled.mechanisms': 'SCRAM-SHA-512',
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': scram,
    'listener.name.controller.sasl.enabled.mechanisms': 'PLAIN',
    'listener.name.controller.plain.sasl.jaas.config': plain,
    'ssl.keystore.type': 'PKCS12',
    'ssl.keystore.location': files.keystoreFile,
    'ssl.keystore.password': files.keystorePassword,
    'ssl.key.password': files.keystorePassword,
    'ssl.truststore.type': 'PEM',
    'ssl.truststore.location': files.caFile,
    'ssl.client.auth': 'none',
    'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'super.users': SUPER_USERS.map((user) => `User:${user}`).join(';'),
    'allow.everyone.if.no.acl.found': 'false',
    // Only the admin creates topics: a typo in a client's topic name is an error, not a new topic.
    'auto.create.topics.enable': 'false',
  });
}

/** `StorageTool format --add-scram` arguments, one per user (verified against Kafka 4.1.1's StorageTool). */
export function scramFormatArguments(passwords: Record<SecureUser, string>): string[] {
  return SECURE_USERS.flatMap((user) => ['--add-scram', `SCRAM-SHA-512=[name=${user},password=${passwords[user]}]`]);
}

export type AclResource = 'topic' | 'group';
export type AclOperation = 'read' | 'write';

/** One ALLOW rule. READ and WRITE imply DESCRIBE in Kafka; WRITE on any topic implies IDEMPOTENT_WRITE. */
export interface AclGrant {
  principal: `User:${SecureUser}`;
  resource: AclResource;
  name: string;
  pattern: 'literal' | 'prefixed';
  operation: AclOperation;
}

/**
 * Who may do what on one installation (topic prefix and workers' consumer group). Agents write
 * requests, plan commands and observations and read outcomes and plan events; only workers read
 * requests and write outcomes, dead letters, plan events and inconsistencies (and requests: reroutes
 * and plan steps); analysts get nothing. docs/SECURITY.md has the same table.
 */
export function arbiterAcls(topicPrefix: string, groupId: string): AclGrant[] {
  const topics = topicNames(topicPrefix);
  const topic = (principal: AclGrant['principal'], operation: AclOperation, name: string): AclGrant => ({
    principal,
    resource: 'topic',
    name,
    pattern: 'literal',
    operation,
  });
  const worker = 'User:worker' as const;
  const agent = 'User:agent' as const;
  return [
    // Workers (and `arbiter relay`, which runs with the workers' credentials).
    ...[topics.requests, topics.planCommands, topics.observations].map((name) => topic(worker, 'read', name)),
    ...[topics.outcomes, topics.deadLetter, topics.planEvents, topics.inconsistencies, topics.requests].map((name) =>
      topic(worker, 'write', name),
    ),
    // The request consumers, the plan relay and the inconsistency detector.
    ...[groupId, `${groupId}.plans`, `${groupId}.observations`].map(
      (name): AclGrant => ({ principal: worker, resource: 'group', name, pattern: 'literal', operation: 'read' }),
    ),
    // Agents, through the SDK.
    ...[topics.requests, topics.planCommands, topics.observations].map((name) => topic(agent, 'write', name)),
    ...[topics.outcomes, topics.planEvents].map((name) => topic(agent, 'read', name)),
    { principal: agent, resource: 'group', name: SDK_GROUP_PREFIX, pattern: 'prefixed', operation: 'read' },
  ];
}

/** A JAAS line for server.properties; the values are hex, so they never need quoting. */
function jaas(loginModule: string, options: Record<string, string>): string {
  const settings = Object.entries(options).map(([key, value]) => `${key}="${value}"`);
  return `${loginModule} required ${settings.join(' ')};`;
}
