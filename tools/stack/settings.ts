import { homedir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ENDPOINTS } from '../../src/config/index.ts';

// The workers' defaults, so that `stack up` with no environment serves `worker` with none.
export const DEFAULT_KAFKA_BROKER = DEFAULT_ENDPOINTS.kafkaBrokers;
/** The Confluent-compatible API root (Apicurio serves it under /apis/ccompat/v7), not the server root. */
export const DEFAULT_SCHEMA_REGISTRY_URL = DEFAULT_ENDPOINTS.schemaRegistryUrl;
export const DEFAULT_DATABASE_URL = DEFAULT_ENDPOINTS.databaseUrl;
export const EMBEDDED_POSTGRES_PORT = 5433;

export type StackMode = 'auto' | 'local' | 'containers';

/** Everything the stack reads from the environment, read in one place. */
export interface StackSettings {
  cacheDir: string;
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  /** Undefined when DATABASE_URL is not set: the stack then picks a server itself. */
  databaseUrl: string | undefined;
  /** We only ever start services on the default loopback addresses. */
  mayStartKafka: boolean;
  mayStartRegistry: boolean;
  registryJava: string | undefined;
  kafkaJava: string | undefined;
  javaHome: string | undefined;
  mode: StackMode;
}

export function readStackSettings(env: NodeJS.ProcessEnv = process.env): StackSettings {
  const kafkaBrokers = parseBrokers(env.KAFKA_BROKERS ?? DEFAULT_KAFKA_BROKER);
  const schemaRegistryUrl = (nonEmpty(env.SCHEMA_REGISTRY_URL) ?? DEFAULT_SCHEMA_REGISTRY_URL).replace(/\/+$/, '');
  return {
    cacheDir: nonEmpty(env.ARBITER_CACHE_DIR) ?? join(homedir(), '.cache', 'arbiter'),
    kafkaBrokers,
    schemaRegistryUrl,
    databaseUrl: nonEmpty(env.DATABASE_URL),
    mayStartKafka: kafkaBrokers.length === 1 && normalizeLoopback(kafkaBrokers[0]!) === DEFAULT_KAFKA_BROKER,
    mayStartRegistry: normalizeLoopback(schemaRegistryUrl) === DEFAULT_SCHEMA_REGISTRY_URL,
    registryJava: nonEmpty(env.ARBITER_REGISTRY_JAVA),
    kafkaJava: nonEmpty(env.ARBITER_KAFKA_JAVA),
    javaHome: nonEmpty(env.JAVA_HOME),
    mode: parseMode(env.ARBITER_STACK_MODE),
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

function normalizeLoopback(address: string): string {
  return address.replace('localhost', '127.0.0.1');
}

function parseMode(value: string | undefined): StackMode {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'local' || value === 'containers') return value;
  throw new Error(`ARBITER_STACK_MODE must be auto, local or containers, not "${value}"`);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
