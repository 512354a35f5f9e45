import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ACTIONS, type ActionName } from '../contract/actions.ts';
import { ArbiterError, errorMessage } from '../contract/errors.ts';
import { resolveKafkaSecurity, SASL_MECHANISMS, type KafkaSecurity } from '../contract/kafka-client.ts';
import { parsePrivateKey, parsePublicKey } from '../contract/signing.ts';
import { compileBudgetRules, type ArrivalRules, type BudgetRules, type SignatureRules } from '../decide/index.ts';
import { DEFAULT_MAX_CONNECTIONS } from '../executor/index.ts';
import {
  agentGlob,
  compilePolicy,
  compileScopeRules,
  DEFAULT_SCOPE_RULES,
  InvalidPolicyError,
  InvalidScopeRulesError,
  type Policy,
  type ScopeResolver,
} from '../routing/index.ts';

const ms = z.number().int().nonnegative();
const minAvailable = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+%?$/, 'a count (3) or a percentage ("50%")')]);

const actionSettings = z.object({
  /** Identical requests within this window of a primary are coalesced into it. */
  coalesceWindowMs: ms.default(30_000),
  /** Trailing mode: hold the primary for its window so duplicates can join before it runs. */
  waitForDuplicates: z.boolean().default(false),
  /** How long the executor may take before the action counts as failed. */
  timeoutMs: ms.default(60_000),
  /**
   * Params of this action that hold secrets (a token, a password): stored as "[redacted]" in the
   * audit trail and censored in log lines, passed as sent to the executor (docs/SECURITY.md).
   */
  secretParams: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,256}$/, 'a param name of letters, digits, _ . -')).default([]),
});

const actionDefaults = Object.fromEntries(ACTIONS.map((a) => [a, actionSettings.parse({})])) as Record<
  ActionName,
  z.infer<typeof actionSettings>
>;

export const ConfigSchema = z
  .object({
    kafka: z
      .object({
        brokers: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'host:port')).min(1),
        clientId: z.string().min(1).default('arbiter'),
        groupId: z.string().min(1).default('arbiter-workers'),
        topicPrefix: z.string().regex(/^[A-Za-z0-9._-]+$/).default('arbiter'),
        requestPartitions: z.number().int().min(1).max(10_000).default(12),
        replicationFactor: z.number().int().min(1).default(1),
        sessionTimeoutMs: ms.default(30_000),
        heartbeatIntervalMs: ms.default(3_000),
        // At least the partitions one worker owns, so one busy partition never holds up the others' intake.
        partitionsConsumedConcurrently: z.number().int().min(1).default(12),
        /**
         * Bytes a fetch may bring per partition and in all (kafkajs' maxBytesPerPartition and
         * maxBytes; a record larger than either still comes, alone). A fetched record keeps its
         * whole fetch response alive until it is answered, and kafkajs' defaults (1 MiB, 10 MiB)
         * are ~4,000 records per partition where a worker decides 1,000 at a time: smaller fetches
         * measured ~20 MiB less RSS per worker in the full storm on a slow machine, at the same
         * throughput; on a fast one RSS was the same and kafkajs' defaults ran 5-10 % faster,
         * within run-to-run noise (docs/BENCHMARKS.md, issue 12 third and fourth passes).
         */
        fetchMaxBytesPerPartition: z.number().int().min(1_024).default(262_144),
        fetchMaxBytes: z.number().int().min(1_024).default(2_097_152),
        /**
         * How long the broker may hold a fetch that finds nothing new (Kafka's fetch.max.wait.ms).
         * It adds no latency: the broker answers as soon as a record arrives (min bytes 1). It is
         * what an idle consumer costs: each worker runs three (requests, plan commands,
         * observations), and at 50 ms they made ~60 fetches a second per worker between records.
         */
        fetchMaxWaitMs: ms.min(1).default(500),
        /**
         * TLS to the brokers (docs/STACK.md#secure-stack). Files are read at load; env KAFKA_SSL_ENABLED,
         * KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE, KAFKA_SSL_SERVERNAME,
         * KAFKA_SSL_REJECT_UNAUTHORIZED.
         */
        ssl: z
          .object({
            enabled: z.boolean().default(false),
            caFile: z.string().min(1).optional(),
            certFile: z.string().min(1).optional(),
            keyFile: z.string().min(1).optional(),
            servername: z.string().min(1).optional(),
            rejectUnauthorized: z.boolean().default(true),
          })
          .strict()
          .prefault({}),
        /**
         * SASL to the brokers; the password inline or, better, in a file (a mounted Secret). Env
         * KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SASL_PASSWORD_FILE.
         * Never logged: the loaded config keeps neither the password nor the file's contents.
         */
        sasl: z
          .object({
            mechanism: z.enum(SASL_MECHANISMS).default('scram-sha-512'),
            username: z.string().min(1),
            password: z.string().min(1).optional(),
            passwordFile: z.string().min(1).optional(),
          })
          .strict()
          .nullish(),
      })
      .strict(),
    schemaRegistryUrl: z.url(),
    databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL'),
    executor: z
      .object({
        url: z.url().default('http://127.0.0.1:8088'),
        timeoutMs: ms.default(60_000),
        /**
         * Signs every executor call (HMAC-SHA256, docs/EXECUTOR.md#signed-calls). Env
         * ARBITER_EXECUTOR_HMAC_KEY; or hmacKeyFile, a file holding it (a mounted Secret).
         */
        hmacKey: z.string().min(16, 'at least 16 characters').optional(),
        hmacKeyFile: z.string().min(1).optional(),
        /** Sent as `authorization: Bearer …`. Env ARBITER_EXECUTOR_TOKEN; or bearerTokenFile. */
        bearerToken: z.string().min(1).optional(),
        bearerTokenFile: z.string().min(1).optional(),
        /** Extra headers sent with every call (e.g. an API key your gateway wants). */
        headers: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'an HTTP header name'), z.string()).default({}),
        /**
         * Connections a worker keeps to the executor at most, for actions and again for
         * observations; calls beyond wait for one, within timeoutMs. `null`: unbounded, one per
         * call in flight (~930 per worker at a storm's start). docs/EXECUTOR.md.
         */
        maxConnections: z.number().int().min(1).nullable().default(DEFAULT_MAX_CONNECTIONS),
      })
      .strict()
      .refine((e) => !(e.hmacKey && e.hmacKeyFile), { message: 'set executor.hmacKey or executor.hmacKeyFile, not both', path: ['hmacKeyFile'] })
      .refine((e) => !(e.bearerToken && e.bearerTokenFile), { message: 'set executor.bearerToken or executor.bearerTokenFile, not both', path: ['bearerTokenFile'] })
      .prefault({}),
    worker: z
      .object({
        id: z.string().min(1).default(`${hostname()}-${process.pid}`),
        metricsPort: z.number().int().min(0).max(65_535).default(9464),
        /** Loopback by default; a container or pod that is scraped from outside sets 0.0.0.0. */
        metricsHost: z.string().min(1).default('127.0.0.1'),
        /** How long SIGTERM waits for running executions before aborting them for the next owner. */
        shutdownTimeoutMs: ms.default(30_000),
        /** Deadline of every other start-up and shutdown step (connect, subscribe, flush, disconnect). */
        startStepTimeoutMs: ms.min(100).default(60_000),
        stopStepTimeoutMs: ms.min(100).default(10_000),
        /** Final outcomes still unpublished after this long are published from PostgreSQL (the outbox sweep, run as often). */
        outboxSweepMs: ms.min(500).default(30_000),
        /** Pause a partition when this many of its requests wait in memory (backpressure). */
        maxPendingPerPartition: z.number().int().min(1).default(20_000),
        /**
         * Duplicates waiting in memory for their in-flight primary, per partition. Beyond it a
         * primary's followers wait in PostgreSQL only (where they are already) and are read back
         * when it ends: a storm's memory stays bounded whatever its size. A follower is packed in
         * 28 bytes (worker/follower-list.ts), so 50,000 are ~1.4-2.8 MiB a partition; with 1,000,
         * most primaries of the benchmark storm spilled and reading their followers back cost
         * PostgreSQL ~9 µs per request (docs/BENCHMARKS.md, issue 12 sixth pass).
         */
        maxWaitingFollowersPerPartition: z.number().int().min(0).default(50_000),
        /**
         * How far V8 lets the heap grow past what survived the last full collection, in percent
         * (`--heap-growing-percent`); 0 leaves V8's own choice. V8 picks up to 300 % on a large
         * machine (a storm's worker peaked at ~470 MiB RSS keeping ~80 MiB alive) and ~30 % under a
         * container-sized --max-old-space-size (~50 % more CPU in collections). See worker/heap-policy.ts.
         */
        heapGrowingPercent: z.number().int().min(0).max(300).default(50),
        /** Consumer lag is read from the broker this often, whether or not records arrive. */
        lagRefreshMs: ms.min(500).default(5_000),
        /** How often the lock-log metrics (acquire failures, TTL expirations from every path) are brought up to date. */
        lockLogMetricsMs: ms.min(200).default(2_000),
      })
      .strict()
      .prefault({}),
    locks: z
      .object({
        ttlMs: ms.min(1_000).default(300_000),
        /** Renewal period while an action runs; defaults to a third of the TTL. */
        renewEveryMs: ms.optional(),
        /** Wait before trying again when someone else holds the lock. */
        retryMs: ms.default(1_000),
        reaperIntervalMs: ms.min(100).default(5_000),
      })
      .strict()
      .prefault({}),
    actions: z
      .partialRecord(z.enum(ACTIONS), actionSettings)
      .default({})
      .transform((given) => ({ ...actionDefaults, ...given })),
    conflicts: z
      .object({
        windowMs: ms.default(300_000),
        pairs: z
          .array(z.tuple([z.enum(ACTIONS), z.enum(ACTIONS)]))
          .default([
            ['rollback', 'hotfix'],
            ['rollback', 'deploy'],
            ['hotfix', 'deploy'],
          ]),
      })
      .strict()
      .prefault({}),
    budget: z
      .object({
        /** Used when neither a workload rule nor the executor's observation says otherwise. */
        defaultMinAvailable: minAvailable.default('50%'),
        workloads: z.array(z.object({ match: z.string(), minAvailable }).strict()).default([]),
        /** What a breach does before the request's deadline: wait for capacity, or reject at once. */
        onBreach: z.enum(['defer', 'reject']).default('defer'),
      })
      .strict()
      .prefault({}),
    deferral: z
      .object({
        /** A deferred request gives up after this long, or at its own deadline if that comes first (waiting on a plan Arbiter made: at the plan's end). */
        maxDeferMs: ms.default(120_000),
        recheckMs: ms.min(10).default(500),
      })
      .strict()
      .prefault({}),
    preconditions: z
      .object({
        /**
         * A node terminate whose node is not drained: `wait` until it is (REJECTED_PRECONDITION at
         * its deadline), or `expand` it into the plan that drains it first.
         */
        terminateUndrained: z.enum(['wait', 'expand']).default('wait'),
      })
      .strict()
      .prefault({}),
    plans: z
      .object({
        /** Run the plan relay (commands in, steps and events out) inside each worker; `arbiter relay` runs it alone. */
        relay: z.boolean().default(true),
        /** How often the relay looks for finished steps, passed deadlines and unpublished outbox rows. */
        pollMs: ms.min(10).default(200),
        /** A plan submitted without a deadline ends FAILED after this long, so every plan ends. */
        defaultDeadlineMs: ms.min(1_000).default(3_600_000),
      })
      .strict()
      .prefault({}),
    audit: z
      .object({
        /** Monthly partitions the workers keep ready ahead of time. */
        partitionMonthsAhead: z.number().int().min(1).max(24).default(2),
        /** Audit partitions and finished working state older than this are dropped; 0 keeps everything. */
        retentionDays: z.number().int().min(0).default(0),
        upkeepIntervalMs: ms.min(1_000).default(3_600_000),
        /**
         * Password of the LOGIN role `arbiter_analyst` (read-only, analyst views only), set by
         * `migrate`; null leaves the role unable to log in. Env ARBITER_ANALYST_PASSWORD.
         */
        analystPassword: z.string().min(8).nullable().default(null),
      })
      .strict()
      .prefault({}),
    detection: z
      .object({
        /** Run the inconsistency detector in the workers (one at a time does the work). */
        enabled: z.boolean().default(true),
        /** How often the detector compares observations with Arbiter's verified changes. */
        intervalMs: ms.min(100).default(2_000),
        /** A resource not observed for this long after Arbiter changed it is a stale_observation. */
        staleObservationMs: ms.min(1_000).default(300_000),
      })
      .strict()
      .prefault({}),
    /**
     * Agents' clocks are not the workers': a deadline is treated as passed only this long after
     * it, by the worker's clock, so an agent running slightly behind is not expired by mistake.
     */
    clockSkewToleranceMs: ms.default(2_000),
    retries: z
      .object({
        /** Unexpected errors (not ones whose code says to wait and retry) before a request ends FAILED. */
        maxAttempts: z.number().int().min(1).default(5),
        /** First wait after an unexpected error; doubled each attempt up to maxBackoffMs. */
        backoffMs: ms.default(500),
        maxBackoffMs: ms.default(30_000),
      })
      .strict()
      .prefault({}),
    /**
     * Agent identity (docs/SECURITY.md): Ed25519 signatures on requests. `agentKeys` maps agent ids
     * to public keys (`arbiter keys generate` prints the line); an agent with a key must sign.
     */
    signatures: z
      .object({
        /** Every agent must sign, except `unsignedAgents` (patterns, `*` wildcard; for migration). */
        required: z.boolean().default(false),
        unsignedAgents: z.array(z.string()).default([]),
        agentKeys: z.record(z.string(), z.string()).default({}),
        /** A signed request made longer ago than this (by requestedAt) is a replay. */
        maxAgeMs: ms.min(1_000).default(600_000),
        /** Arbiter's own key (PEM), to sign the plan steps it releases on an agent's behalf. Env ARBITER_SIGNING_KEY. */
        arbiterPrivateKey: z.string().nullable().default(null),
        /** Public keys of Arbiter's signing keys (every worker's and relay's): accepted for any agent. */
        arbiterKeys: z.array(z.string()).default([]),
      })
      .strict()
      .prefault({}),
    scopeRules: z.array(z.object({ match: z.string(), scope: z.string() }).strict()).default([]),
    policy: z
      .object({
        defaultEffect: z.enum(['allow', 'deny']).default('allow'),
        rules: z
          .array(
            z
              .object({
                agents: z.array(z.string()).min(1),
                actions: z.array(z.string()).min(1),
                arns: z.array(z.string()).min(1),
                effect: z.enum(['allow', 'deny']),
              })
              .strict(),
          )
          .default([]),
        reservedTypes: z.record(z.string(), z.string()).default({}),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxParams: z.number().int().min(0).default(64),
        maxParamBytes: z.number().int().min(1).default(4_096),
        maxDependsOn: z.number().int().min(0).default(64),
        maxIdLength: z.number().int().min(1).default(256),
        /** Longer reasons are REJECTED_INVALID (and stored cut to 8 KiB). */
        maxReasonBytes: z.number().int().min(1).default(4_096),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const problem of kafkaSecuritySettingsProblems(c.kafka)) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
    if (c.kafka.heartbeatIntervalMs * 3 > c.kafka.sessionTimeoutMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['kafka', 'heartbeatIntervalMs'],
        message: `must be at most a third of kafka.sessionTimeoutMs (${c.kafka.sessionTimeoutMs})`,
      });
    }
    if (c.locks.renewEveryMs !== undefined && c.locks.renewEveryMs >= c.locks.ttlMs) {
      ctx.addIssue({ code: 'custom', path: ['locks', 'renewEveryMs'], message: 'must be shorter than locks.ttlMs' });
    }
    // Every matcher is compiled here, so a bad pattern fails at start-up naming its field,
    // rather than throwing for every request that reaches it.
    const compiled = compileMatchers(c);
    for (const problem of compiled.problems) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
  });

type ParsedConfig = z.output<typeof ConfigSchema>;

/** What the schema alone cannot say about kafka.ssl / kafka.sasl (files are checked when read). */
function kafkaSecuritySettingsProblems(k: {
  ssl: { enabled: boolean; caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined; servername?: string | undefined };
  sasl?: { password?: string | undefined; passwordFile?: string | undefined } | null | undefined;
}): Array<{ path: Array<string | number>; message: string }> {
  const problems: Array<{ path: Array<string | number>; message: string }> = [];
  const { ssl, sasl } = k;
  if (!ssl.enabled) {
    for (const field of ['caFile', 'certFile', 'keyFile', 'servername'] as const) {
      if (ssl[field] !== undefined) problems.push({ path: ['kafka', 'ssl', field], message: 'is set but kafka.ssl.enabled is false (KAFKA_SSL_ENABLED=true)' });
    }
  }
  if ((ssl.certFile === undefined) !== (ssl.keyFile === undefined)) {
    problems.push({ path: ['kafka', 'ssl', ssl.certFile === undefined ? 'certFile' : 'keyFile'], message: 'a client certificate needs both certFile and keyFile' });
  }
  if (sasl) {
    if (sasl.password !== undefined && sasl.passwordFile !== undefined) {
      problems.push({ path: ['kafka', 'sasl', 'passwordFile'], message: 'set kafka.sasl.password or kafka.sasl.passwordFile, not both' });
    }
    if (sasl.password === undefined && sasl.passwordFile === undefined) {
      problems.push({ path: ['kafka', 'sasl', 'password'], message: 'required: kafka.sasl.password (KAFKA_SASL_PASSWORD) or kafka.sasl.passwordFile (KAFKA_SASL_PASSWORD_FILE)' });
    }
  }
  return problems;
}

/** The matchers built from the config once, at load time (the third stage: raw → with defaults → compiled). */
export interface CompiledMatchers {
  scopes: ScopeResolver;
  policy: Policy;
  budget: BudgetRules;
  signatures: SignatureRules;
  /** Arbiter's own signing key, when configured. */
  arbiterSigningKey: KeyObject | null;
  /** kafka.ssl / kafka.sasl with their files read; kafkaSecurityOptions(config) turns it into kafkajs options. */
  kafkaSecurity: KafkaSecurity;
}

function compileMatchers(c: ParsedConfig): { matchers?: CompiledMatchers; problems: Array<{ path: Array<string | number>; message: string }> } {
  const problems: Array<{ path: Array<string | number>; message: string }> = [];
  const attempt = <T>(path: Array<string | number>, build: () => T): T | undefined => {
    try {
      return build();
    } catch (error) {
      if (error instanceof InvalidScopeRulesError || error instanceof InvalidPolicyError) {
        for (const message of error.problems) problems.push({ path, message });
        return undefined;
      }
      throw error;
    }
  };
  const scopes = attempt(['scopeRules'], () => compileScopeRules([...c.scopeRules, ...DEFAULT_SCOPE_RULES]));
  const policy = attempt(['policy'], () => compilePolicy(c.policy));
  const budget = compileBudgetRules(c.budget.workloads);
  if ('problems' in budget) {
    for (const p of budget.problems) problems.push({ path: ['budget', 'workloads', p.index, 'match'], message: p.message });
  }
  const signatures = compileSignatures(c.signatures, problems);
  const kafka = resolveKafkaSecurity(c.kafka.ssl, c.kafka.sasl);
  problems.push(...kafka.problems);
  if (!scopes || !policy || 'problems' in budget || !signatures || kafka.problems.length > 0) return { problems };
  return { matchers: { scopes, policy, budget: budget.rules, ...signatures, kafkaSecurity: kafka.security }, problems };
}

/** Keys parsed once; a key that is not Ed25519 (or not a key) is a start-up error naming its agent. */
function compileSignatures(
  c: ParsedConfig['signatures'],
  problems: Array<{ path: Array<string | number>; message: string }>,
): { signatures: SignatureRules; arbiterSigningKey: KeyObject | null } | null {
  const before = problems.length;
  const parse = <T>(path: Array<string | number>, build: () => T): T | null => {
    try {
      return build();
    } catch (error) {
      problems.push({ path, message: `not a usable Ed25519 key: ${errorMessage(error)}` });
      return null;
    }
  };
  const keys = new Map(Object.entries(c.agentKeys).map(([agent, text]) => [agent, parse(['signatures', 'agentKeys', agent], () => parsePublicKey(text))]));
  const arbiterKeys = c.arbiterKeys.map((text, i) => parse(['signatures', 'arbiterKeys', i], () => parsePublicKey(text)));
  const arbiterSigningKey = c.arbiterPrivateKey === null ? null : parse(['signatures', 'arbiterPrivateKey'], () => parsePrivateKey(c.arbiterPrivateKey!));
  if (problems.length > before) return null;
  // Arbiter trusts its own signature even when only the private key is configured.
  const trusted = [...(arbiterKeys as KeyObject[]), ...(arbiterSigningKey ? [createPublicKey(arbiterSigningKey)] : [])];
  const unsigned = c.unsignedAgents.map(agentGlob);
  return {
    arbiterSigningKey,
    signatures: {
      required: c.required,
      unsignedAllowed: (agent) => unsigned.some((re) => re.test(agent)),
      keyOf: (agent) => keys.get(agent) ?? null,
      arbiterKeys: trusted,
      maxAgeMs: c.maxAgeMs,
    },
  };
}

export type ArbiterConfig = ParsedConfig & { locks: { renewEveryMs: number }; readonly compiled: CompiledMatchers };
export type ConfigInput = z.input<typeof ConfigSchema>;

export interface LoadConfigOptions {
  /** YAML or JSON file (`--config`). */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Highest precedence, for tests and CLI flags. */
  overrides?: DeepPartial<ConfigInput>;
}
type DeepPartial<T> = T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** Environment variables that map onto the config, documented in the README. */
export const ENV_VARS = {
  KAFKA_BROKERS: 'kafka.brokers (comma-separated host:port)',
  SCHEMA_REGISTRY_URL: 'schemaRegistryUrl (Confluent-compatible API root)',
  DATABASE_URL: 'databaseUrl',
  ARBITER_EXECUTOR_URL: 'executor.url',
  ARBITER_TOPIC_PREFIX: 'kafka.topicPrefix',
  ARBITER_GROUP_ID: 'kafka.groupId',
  KAFKA_SSL_ENABLED: 'kafka.ssl.enabled (true/false; implied true when a KAFKA_SSL_* file or name is set)',
  KAFKA_SSL_CA_FILE: 'kafka.ssl.caFile (PEM)',
  KAFKA_SSL_CERT_FILE: 'kafka.ssl.certFile (PEM, mutual TLS)',
  KAFKA_SSL_KEY_FILE: 'kafka.ssl.keyFile (PEM, mutual TLS)',
  KAFKA_SSL_SERVERNAME: 'kafka.ssl.servername',
  KAFKA_SSL_REJECT_UNAUTHORIZED: 'kafka.ssl.rejectUnauthorized (default true)',
  KAFKA_SASL_MECHANISM: 'kafka.sasl.mechanism (plain, scram-sha-256, scram-sha-512; default scram-sha-512)',
  KAFKA_SASL_USERNAME: 'kafka.sasl.username',
  KAFKA_SASL_PASSWORD: 'kafka.sasl.password (never logged)',
  KAFKA_SASL_PASSWORD_FILE: 'kafka.sasl.passwordFile (a file holding the password)',
  ARBITER_WORKER_ID: 'worker.id',
  ARBITER_METRICS_PORT: 'worker.metricsPort',
  ARBITER_METRICS_HOST: 'worker.metricsHost (default 127.0.0.1; 0.0.0.0 in a container scraped from outside)',
  ARBITER_EXECUTOR_HMAC_KEY: 'executor.hmacKey (read where the executor is built, src/executor/from-config.ts)',
  ARBITER_EXECUTOR_TOKEN: 'executor.bearerToken (read where the executor is built)',
  ARBITER_LOCK_TTL_MS: 'locks.ttlMs',
  ARBITER_ANALYST_PASSWORD: 'audit.analystPassword',
  ARBITER_SIGNING_KEY: 'signatures.arbiterPrivateKey (PEM)',
  ARBITER_CONFIG: 'path of the config file (same as --config)',
} as const;

export const DEFAULT_ENDPOINTS = {
  kafkaBrokers: '127.0.0.1:9092',
  schemaRegistryUrl: 'http://127.0.0.1:8081/apis/ccompat/v7',
  databaseUrl: 'postgres://postgres@127.0.0.1:5432/arbiter',
};

function fromEnv(env: NodeJS.ProcessEnv): DeepPartial<ConfigInput> {
  // An empty variable counts as unset (as in envOnlyWhenSet), so `DATABASE_URL=` falls back to the default.
  const text = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  const number = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v));
  return {
    kafka: {
      brokers: (text(env.KAFKA_BROKERS) ?? DEFAULT_ENDPOINTS.kafkaBrokers).split(',').map((b) => b.trim()).filter(Boolean),
      topicPrefix: text(env.ARBITER_TOPIC_PREFIX),
      groupId: text(env.ARBITER_GROUP_ID),
      ssl: kafkaSslFromEnv(env),
      sasl: kafkaSaslFromEnv(env),
    },
    schemaRegistryUrl: text(env.SCHEMA_REGISTRY_URL) ?? DEFAULT_ENDPOINTS.schemaRegistryUrl,
    databaseUrl: text(env.DATABASE_URL) ?? DEFAULT_ENDPOINTS.databaseUrl,
    executor: { url: text(env.ARBITER_EXECUTOR_URL) },
    worker: { id: text(env.ARBITER_WORKER_ID), metricsPort: number(env.ARBITER_METRICS_PORT), metricsHost: text(env.ARBITER_METRICS_HOST) },
    locks: { ttlMs: number(env.ARBITER_LOCK_TTL_MS) },
    audit: { analystPassword: text(env.ARBITER_ANALYST_PASSWORD) },
    signatures: { arbiterPrivateKey: text(env.ARBITER_SIGNING_KEY) },
  };
}

/** 'true'/'1'/'yes' and 'false'/'0'/'no'; anything else is passed on for the schema to name. */
function envBoolean(v: string | undefined): boolean | undefined {
  if (v === undefined || v === '') return undefined;
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  return v as unknown as boolean;
}

/** kafka.ssl from KAFKA_SSL_*; undefined when none is set, so the file's settings stand. */
function kafkaSslFromEnv(env: NodeJS.ProcessEnv): DeepPartial<NonNullable<ConfigInput['kafka']['ssl']>> | undefined {
  const text = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  const files = {
    caFile: text(env.KAFKA_SSL_CA_FILE),
    certFile: text(env.KAFKA_SSL_CERT_FILE),
    keyFile: text(env.KAFKA_SSL_KEY_FILE),
    servername: text(env.KAFKA_SSL_SERVERNAME),
  };
  const named = Object.values(files).some((v) => v !== undefined);
  const enabled = envBoolean(env.KAFKA_SSL_ENABLED) ?? (named ? true : undefined);
  const rejectUnauthorized = envBoolean(env.KAFKA_SSL_REJECT_UNAUTHORIZED);
  if (!named && enabled === undefined && rejectUnauthorized === undefined) return undefined;
  return { enabled, ...files, rejectUnauthorized };
}

/** kafka.sasl from KAFKA_SASL_*; undefined when none is set. */
function kafkaSaslFromEnv(env: NodeJS.ProcessEnv): DeepPartial<NonNullable<ConfigInput['kafka']['sasl']>> | undefined {
  const text = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  const values = {
    mechanism: text(env.KAFKA_SASL_MECHANISM)?.toLowerCase() as (typeof SASL_MECHANISMS)[number] | undefined,
    username: text(env.KAFKA_SASL_USERNAME),
    password: text(env.KAFKA_SASL_PASSWORD),
    passwordFile: text(env.KAFKA_SASL_PASSWORD_FILE),
  };
  return Object.values(values).some((v) => v !== undefined) ? values : undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Later sources win; undefined never overwrites. Arrays are replaced, not merged. */
function merge(...sources: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const source of sources) {
    if (!isPlainObject(source)) continue;
    for (const [key, value] of Object.entries(source)) {
      if (value === undefined) continue;
      out[key] = isPlainObject(value) && isPlainObject(out[key]) ? merge(out[key], value) : value;
    }
  }
  return out;
}

function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ArbiterError('CONFIG_INVALID', `cannot read config file ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return parseYaml(text) ?? {};
  } catch (error) {
    throw new ArbiterError('CONFIG_INVALID', `config file ${file} is not valid YAML/JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Builds the configuration from defaults, the config file, the environment and overrides (in that
 * order of precedence, lowest first), validates it once and freezes it. Every problem is listed in
 * one error, so an operator fixes them all in one go.
 */
export function loadConfig(options: LoadConfigOptions = {}): Readonly<ArbiterConfig> {
  const env = options.env ?? process.env;
  const file = options.file ?? env.ARBITER_CONFIG;
  const fileValues = file ? readConfigFile(file) : {};
  const raw = merge(fromEnv(env), fileValues, envOnlyWhenSet(env), options.overrides);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  - ${fieldPath(issue.path) || '(root)'}: ${issue.message}`);
    throw new ArbiterError(
      'CONFIG_INVALID',
      `invalid configuration${file ? ` (file ${file})` : ''}, ${problems.length} problem(s):\n${problems.join('\n')}`,
    );
  }
  const data = parsed.data;
  data.locks.renewEveryMs ??= Math.max(100, Math.floor(data.locks.ttlMs / 3));
  const { matchers } = compileMatchers(data);
  // The password lives on only inside compiled.kafkaSecurity, which never prints it.
  if (data.kafka.sasl) delete data.kafka.sasl.password;
  // The data is frozen deep; the compiled matchers hold RegExps and closures, frozen shallowly.
  const config = { ...deepFreeze(data), compiled: Object.freeze(matchers!) } as ArbiterConfig;
  return Object.freeze(config);
}

/** `budget.workloads[0].match`: the way an operator writes the field in the file. */
function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

/** Explicitly set environment variables beat the file; the built-in defaults do not. */
function envOnlyWhenSet(env: NodeJS.ProcessEnv): DeepPartial<ConfigInput> {
  const set = (name: string) => env[name] !== undefined && env[name] !== '';
  const values = fromEnv(env);
  return {
    kafka: {
      ...(set('KAFKA_BROKERS') ? { brokers: values.kafka?.brokers } : {}),
      topicPrefix: values.kafka?.topicPrefix,
      groupId: values.kafka?.groupId,
      ssl: values.kafka?.ssl,
      sasl: values.kafka?.sasl,
    },
    schemaRegistryUrl: set('SCHEMA_REGISTRY_URL') ? values.schemaRegistryUrl : undefined,
    databaseUrl: set('DATABASE_URL') ? values.databaseUrl : undefined,
    executor: values.executor,
    worker: values.worker,
    locks: values.locks,
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** What the arrival rules read of a loaded configuration (the worker's intake and the bench build them alike). */
export function arrivalRules(config: Readonly<ArbiterConfig>): ArrivalRules {
  return { ...config.compiled, limits: config.limits, actions: config.actions, clockSkewToleranceMs: config.clockSkewToleranceMs };
}
