import { homedir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ENDPOINTS } from '../../src/config/index.ts';
import { kafkaSecurityOptions, loadConfig, type KafkaSecurityOptions } from '../../src/index.ts';

// The workers' defaults, so that `stack up` with no environment serves `worker` with none.
export const DEFAULT_KAFKA_BROKER = DEFAULT_ENDPOINTS.kafkaBrokers;
/** The Confluent-compatible API root (Apicurio serves it under /apis/ccompat/v7), not the server root. */
export const DEFAULT_SCHEMA_REGISTRY_URL = DEFAULT_ENDPOINTS.schemaRegistryUrl;
export const DEFAULT_DATABASE_URL = DEFAULT_ENDPOINTS.databaseUrl;
export const EMBEDDED_POSTGRES_PORT = 5433;

export type StackMode = 'auto' | 'local' | 'containers';

/** Where a service the stack starts listens: loopback only, ports from the configured address. */
export interface StackPorts {
  kafka: number;
  kafkaController: number;
  registry: number;
  registryManagement: number;
  /** The secure broker (`stack up --secure`): its SASL_SSL listener and its controller, beside the plain broker. */
  secureKafka: number;
  secureKafkaController: number;
}

/** Everything the stack reads from the environment, read in one place. */
export interface StackSettings {
  cacheDir: string;
  /**
   * Pid files, logs and Kafka's data. A second, private instance (fault tests, a developer next to
   * a shared stack) gets its own with ARBITER_STACK_RUN_DIR, so it never touches the default one.
   */
  runDir: string;
  /** True when ARBITER_STACK_RUN_DIR names a private instance. */
  privateInstance: boolean;
  ports: StackPorts;
  kafkaBrokers: string[];
  /**
   * TLS and SASL for the brokers in KAFKA_BROKERS, from KAFKA_SSL_* / KAFKA_SASL_* as the worker
   * reads them: after `eval "$(arbiter stack up --secure)"`, status and up probe the secure broker
   * as that user. Holds the password: never log it.
   */
  kafkaSecurity: KafkaSecurityOptions;
  schemaRegistryUrl: string;
  /** Undefined when DATABASE_URL is not set: the stack then picks a server itself. */
  databaseUrl: string | undefined;
  /**
   * We only start services on loopback: the default addresses, or any loopback port for a private
   * instance (its own run dir), so a typo in KAFKA_BROKERS never starts a second broker by surprise.
   */
  mayStartKafka: boolean;
  mayStartRegistry: boolean;
  registryJava: string | undefined;
  kafkaJava: string | undefined;
  /** ARBITER_KAFKA_JVM_OPTIONS, split on whitespace: given to the local brokers' JVM after the defaults, so they win. */
  kafkaJvmOptions: string[];
  javaHome: string | undefined;
  mode: StackMode;
  /** The installation the secure broker's topics and ACLs are made for (the workers' ARBITER_TOPIC_PREFIX / ARBITER_GROUP_ID). */
  topicPrefix: string;
  groupId: string;
}

export function readStackSettings(env: NodeJS.ProcessEnv = process.env): StackSettings {
  const kafkaBrokers = parseBrokers(env.KAFKA_BROKERS ?? DEFAULT_KAFKA_BROKER);
  const schemaRegistryUrl = (nonEmpty(env.SCHEMA_REGISTRY_URL) ?? DEFAULT_SCHEMA_REGISTRY_URL).replace(/\/+$/, '');
  const cacheDir = nonEmpty(env.ARBITER_CACHE_DIR) ?? join(homedir(), '.cache', 'arbiter');
  const privateRunDir = nonEmpty(env.ARBITER_STACK_RUN_DIR);
  const kafkaPort = loopbackBrokerPort(kafkaBrokers);
  const registryPort = loopbackRegistryPort(schemaRegistryUrl);
  const secureKafkaPort = portSetting(env.ARBITER_SECURE_KAFKA_PORT, 'ARBITER_SECURE_KAFKA_PORT') ?? 9094;
  const ports: StackPorts = {
    kafka: kafkaPort ?? 9092,
    kafkaController: portSetting(env.ARBITER_KAFKA_CONTROLLER_PORT, 'ARBITER_KAFKA_CONTROLLER_PORT') ?? (kafkaPort ?? 9092) + 1,
    registry: registryPort ?? 8081,
    // Quarkus' default management port 9000 is often taken: 9081 beside 8081, else HTTP port + 1000.
    registryManagement:
      portSetting(env.ARBITER_REGISTRY_MANAGEMENT_PORT, 'ARBITER_REGISTRY_MANAGEMENT_PORT') ?? (registryPort ?? 8081) + 1000,
    secureKafka: secureKafkaPort,
    secureKafkaController:
      portSetting(env.ARBITER_SECURE_KAFKA_CONTROLLER_PORT, 'ARBITER_SECURE_KAFKA_CONTROLLER_PORT') ?? secureKafkaPort + 1,
  };
  const isDefaultKafka = kafkaBrokers.length === 1 && normalizeLoopback(kafkaBrokers[0]!) === DEFAULT_KAFKA_BROKER;
  const isDefaultRegistry = normalizeLoopback(schemaRegistryUrl) === DEFAULT_SCHEMA_REGISTRY_URL;
  return {
    cacheDir,
    runDir: privateRunDir ?? join(cacheDir, 'run'),
    privateInstance: privateRunDir !== undefined,
    ports,
    kafkaBrokers,
    kafkaSecurity: kafkaSecurityFromEnv(env),
    schemaRegistryUrl,
    databaseUrl: nonEmpty(env.DATABASE_URL),
    mayStartKafka: isDefaultKafka || (privateRunDir !== undefined && kafkaPort !== undefined),
    mayStartRegistry: isDefaultRegistry || (privateRunDir !== undefined && registryPort !== undefined),
    registryJava: nonEmpty(env.ARBITER_REGISTRY_JAVA),
    kafkaJava: nonEmpty(env.ARBITER_KAFKA_JAVA),
    kafkaJvmOptions: (env.ARBITER_KAFKA_JVM_OPTIONS ?? '').split(/\s+/).filter((option) => option.length > 0),
    javaHome: nonEmpty(env.JAVA_HOME),
    mode: parseMode(env.ARBITER_STACK_MODE),
    topicPrefix: nonEmpty(env.ARBITER_TOPIC_PREFIX) ?? 'arbiter',
    groupId: nonEmpty(env.ARBITER_GROUP_ID) ?? 'arbiter-workers',
  };
}

export function parseBrokers(list: string): string[] {
  const brokers = list
    .split(',')
    .map((broker) => broker.trim())
    .filter((broker) => broker.length > 0);
  return brokers.length > 0 ? brokers : [DEFAULT_KAFKA_BROKER];
}

export function splitHostPort(address: string): { host: string; port: number } {
  const separator = address.lastIndexOf(':');
  const port = Number(address.slice(separator + 1));
  if (separator <= 0 || !Number.isInteger(port) || port <= 0) {
    throw new Error(`"${address}" is not a host:port address`);
  }
  return { host: address.slice(0, separator).replace(/^\[|\]$/g, ''), port };
}

/** The port of a single broker on 127.0.0.1/localhost, else undefined. */
function loopbackBrokerPort(brokers: string[]): number | undefined {
  if (brokers.length !== 1) return undefined;
  const match = /^(?:127\.0\.0\.1|localhost):(\d+)$/.exec(brokers[0]!);
  return match === null ? undefined : Number(match[1]);
}

/** The port of an Apicurio ccompat root on 127.0.0.1/localhost, else undefined. */
function loopbackRegistryPort(url: string): number | undefined {
  const match = /^http:\/\/(?:127\.0\.0\.1|localhost):(\d+)\/apis\/ccompat\/v7$/.exec(url);
  return match === null ? undefined : Number(match[1]);
}

/** Only the Kafka security variables go to the config loader: the stack needs nothing else of it. */
function kafkaSecurityFromEnv(env: NodeJS.ProcessEnv): KafkaSecurityOptions {
  const kafkaEnv = Object.fromEntries(Object.entries(env).filter(([name, value]) => /^KAFKA_(SSL|SASL)_/.test(name) && nonEmpty(value) !== undefined));
  return Object.keys(kafkaEnv).length === 0 ? {} : kafkaSecurityOptions(loadConfig({ env: kafkaEnv }));
}

function portSetting(value: string | undefined, name: string): number | undefined {
  const text = nonEmpty(value);
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) throw new Error(`${name} must be a TCP port, not "${text}"`);
  return port;
}

function normalizeLoopback(address: string): string {
  return address.replace('localhost', '127.0.0.1');
}

function parseMode(value: string | undefined): StackMode {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'local' || value === 'containers') return value;
  // The CLI says --runtime docker; the variable accepts the same word.
  if (value === 'docker') return 'containers';
  throw new Error(`ARBITER_STACK_MODE must be auto, local or containers (docker), not "${value}"`);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
