import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { inspect } from 'node:util';
import { Partitioners, type ICustomPartitioner, type SASLOptions } from 'kafkajs';
import { BoundedCache } from './bounded-cache.ts';

/** `kafka.ssl` as written in the config file or the environment (file paths, not contents). */
export interface KafkaSslSettings {
  enabled: boolean;
  /** PEM bundle of the CA(s) that signed the brokers' certificates; the system CAs when absent. */
  caFile?: string | undefined;
  /** Client certificate and key (PEM), for brokers that want mutual TLS. Both or neither. */
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** The name checked against the broker's certificate, when it is not the host in `brokers`. */
  servername?: string | undefined;
  rejectUnauthorized: boolean;
}

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanismName = (typeof SASL_MECHANISMS)[number];

/** `kafka.sasl` as written: the password inline (env KAFKA_SASL_PASSWORD) or in a file (KAFKA_SASL_PASSWORD_FILE). */
export interface KafkaSaslSettings {
  mechanism: SaslMechanismName;
  username: string;
  password?: string | undefined;
  passwordFile?: string | undefined;
}

/** What new Kafka(...) takes for TLS and SASL (kafkajs' own option names). */
export interface KafkaSecurityOptions {
  ssl?: ConnectionOptions | boolean;
  sasl?: SASLOptions;
}

const REDACTED = '[redacted]';

/**
 * The resolved TLS and SASL settings of one configuration: files read, password known. It never
 * shows the password: JSON.stringify, util.inspect and pino all see `[redacted]`. Only
 * {@link KafkaSecurity.options} hands it out, to be passed straight to `new Kafka(...)`.
 */
export class KafkaSecurity {
  readonly #ssl: ConnectionOptions | null;
  readonly #sasl: { mechanism: SaslMechanismName; username: string; password: string } | null;
  readonly #describe: { ssl: Record<string, unknown> | false; sasl: Record<string, unknown> | null };

  constructor(
    ssl: ConnectionOptions | null,
    sasl: { mechanism: SaslMechanismName; username: string; password: string } | null,
    describe: { ssl: Record<string, unknown> | false; sasl: Record<string, unknown> | null } = { ssl: ssl ? {} : false, sasl: sasl ? { mechanism: sasl.mechanism, username: sasl.username } : null },
  ) {
    this.#ssl = ssl;
    this.#sasl = sasl;
    this.#describe = { ssl: describe.ssl, sasl: describe.sasl ? { ...describe.sasl, password: REDACTED } : null };
  }

  static readonly NONE = new KafkaSecurity(null, null);

  get tls(): boolean {
    return this.#ssl !== null;
  }

  get saslMechanism(): SaslMechanismName | null {
    return this.#sasl?.mechanism ?? null;
  }

  /** The kafkajs options; a fresh object each call (contains the password: give it to kafkajs only). */
  options(): KafkaSecurityOptions {
    const out: KafkaSecurityOptions = {};
    if (this.#ssl) out.ssl = { ...this.#ssl };
    if (this.#sasl) out.sasl = { ...this.#sasl } as SASLOptions;
    return out;
  }

  toJSON(): unknown {
    return this.#describe;
  }

  [inspect.custom](): unknown {
    return this.#describe;
  }
}

export interface KafkaSecurityProblem {
  path: Array<string | number>;
  message: string;
}

/**
 * Reads the files named by `kafka.ssl` / `kafka.sasl` and checks what the schema cannot: that each
 * file is readable and not empty. Every problem is returned, each naming its field; the caller
 * fails with all of them at once.
 */
export function resolveKafkaSecurity(
  ssl: KafkaSslSettings,
  sasl: KafkaSaslSettings | null | undefined,
  read: (file: string) => string = (file) => readFileSync(file, 'utf8'),
): { security: KafkaSecurity; problems: KafkaSecurityProblem[] } {
  const problems: KafkaSecurityProblem[] = [];
  const file = (field: string, path: Array<string | number>, name: string | undefined): string | undefined => {
    if (name === undefined) return undefined;
    try {
      const text = read(name);
      if (text.trim() === '') {
        problems.push({ path, message: `${field} ${name} is empty` });
        return undefined;
      }
      return text;
    } catch (error) {
      problems.push({ path, message: `cannot read ${field} ${name}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
      return undefined;
    }
  };

  let tls: ConnectionOptions | null = null;
  if (ssl.enabled) {
    tls = { rejectUnauthorized: ssl.rejectUnauthorized };
    const ca = file('CA file', ['kafka', 'ssl', 'caFile'], ssl.caFile);
    const cert = file('certificate file', ['kafka', 'ssl', 'certFile'], ssl.certFile);
    const key = file('key file', ['kafka', 'ssl', 'keyFile'], ssl.keyFile);
    if (ca !== undefined) tls.ca = [ca];
    if (cert !== undefined) tls.cert = cert;
    if (key !== undefined) tls.key = key;
    if (ssl.servername !== undefined) tls.servername = ssl.servername;
  }

  let credentials: { mechanism: SaslMechanismName; username: string; password: string } | null = null;
  if (sasl) {
    // A password file ends with a newline more often than not; the password itself does not.
    const fromFile = file('password file', ['kafka', 'sasl', 'passwordFile'], sasl.passwordFile)?.replace(/\r?\n$/, '');
    const password = sasl.password ?? fromFile;
    if (password !== undefined) credentials = { mechanism: sasl.mechanism, username: sasl.username, password };
  }

  const describe = {
    ssl: tls
      ? {
          caFile: ssl.caFile ?? null,
          certFile: ssl.certFile ?? null,
          keyFile: ssl.keyFile ?? null,
          servername: ssl.servername ?? null,
          rejectUnauthorized: ssl.rejectUnauthorized,
        }
      : (false as const),
    sasl: sasl ? { mechanism: sasl.mechanism, username: sasl.username, passwordFile: sasl.passwordFile ?? null } : null,
  };
  return { security: new KafkaSecurity(tls, credentials, describe), problems };
}

/**
 * The one place a loaded configuration becomes kafkajs `ssl` / `sasl` options: the worker, the
 * relay, the CLI and (through ArbiterClientOptions) the SDK all spread this into their client.
 * A configuration without `kafka.ssl` / `kafka.sasl` gives `{}`: plaintext, as before.
 */
export function kafkaSecurityOptions(config: { readonly compiled: { readonly kafkaSecurity?: KafkaSecurity | undefined } }): KafkaSecurityOptions {
  return (config.compiled.kafkaSecurity ?? KafkaSecurity.NONE).options();
}

/**
 * kafkajs' DefaultPartitioner (Java's murmur2 of the key, so every client agrees; see
 * routing/partitioner.ts), remembering the partition of each key: an outcome is keyed by its
 * scope, a storm repeats a few thousand scopes, and hashing every key was ~8 % of a worker's CPU.
 * One cache per topic, for the partition count it was filled with (a topic that grows starts
 * afresh), looked up by the key itself: a key built from topic, count and key cost a new string
 * to hash on every record. Bounded: cleared when full.
 */
export const keyedPartitioner: ICustomPartitioner = () => {
  const inner = Partitioners.DefaultPartitioner();
  const byTopic = new Map<string, { partitions: number; known: BoundedCache<string, number> }>();
  return (args) => {
    const { topic, partitionMetadata, message } = args;
    if (typeof message.key !== 'string' || typeof message.partition === 'number') return inner(args);
    let memo = byTopic.get(topic);
    if (memo?.partitions !== partitionMetadata.length) byTopic.set(topic, (memo = { partitions: partitionMetadata.length, known: new BoundedCache(50_000) }));
    return memo.known.get(message.key) ?? memo.known.set(message.key, inner(args));
  };
};
