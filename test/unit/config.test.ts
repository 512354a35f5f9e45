import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_ENDPOINTS, loadConfig, type ConfigInput } from '../../src/config/index.ts';
import { ArbiterError } from '../../src/contract/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbiter-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function configFile(text: string): string {
  const file = join(dir, `arbiter-${++fileCount}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** The thrown error, asserted to be a CONFIG_INVALID ArbiterError. */
function configError(load: () => unknown): ArbiterError {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ArbiterError);
    expect((error as ArbiterError).code).toBe('CONFIG_INVALID');
    expect((error as ArbiterError).retryable).toBe(false);
    return error as ArbiterError;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('loadConfig defaults', () => {
  // An empty env, so the developer's shell never leaks into the test.
  const config = loadConfig({ env: {} });

  it('locks for 5 minutes and renews every third of that', () => {
    expect(config.locks.ttlMs).toBe(300_000);
    expect(config.locks.renewEveryMs).toBe(100_000);
  });

  it('derives renewEveryMs from a configured ttl when it is not given', () => {
    expect(loadConfig({ env: {}, overrides: { locks: { ttlMs: 9_000 } } }).locks.renewEveryMs).toBe(3_000);
    expect(loadConfig({ env: {}, overrides: { locks: { ttlMs: 9_000, renewEveryMs: 1_000 } } }).locks.renewEveryMs).toBe(1_000);
  });

  it('spreads requests over 12 partitions', () => {
    expect(config.kafka.requestPartitions).toBe(12);
  });

  it('fetches at most 256 KiB per partition and 2 MiB in all (a fetched record keeps its response alive)', () => {
    expect(config.kafka.fetchMaxBytesPerPartition).toBe(262_144);
    expect(config.kafka.fetchMaxBytes).toBe(2_097_152);
    expect(() => loadConfig({ env: {}, overrides: { kafka: { fetchMaxBytesPerPartition: 10 } } as ConfigInput })).toThrow(/fetchMaxBytesPerPartition/);
  });

  it('lets the broker hold an empty fetch 500 ms (idle consumers poll ~2 times a second, not 20), never 0', () => {
    expect(config.kafka.fetchMaxWaitMs).toBe(500);
    expect(() => loadConfig({ env: {}, overrides: { kafka: { fetchMaxWaitMs: 0 } } as ConfigInput })).toThrow(/fetchMaxWaitMs/);
  });

  it('bounds the executor’s connections at 256 unless executor.maxConnections says (at least 1, or null for unbounded)', () => {
    expect(config.executor.maxConnections).toBe(256);
    expect(loadConfig({ env: {}, overrides: { executor: { maxConnections: null } } as ConfigInput }).executor.maxConnections).toBeNull();
    expect(loadConfig({ env: {}, overrides: { executor: { maxConnections: 32 } } as ConfigInput }).executor.maxConnections).toBe(32);
    expect(() => loadConfig({ env: {}, overrides: { executor: { maxConnections: 0 } } as ConfigInput })).toThrow(/executor\.maxConnections/);
  });

  it('talks to the local stack', () => {
    expect(config.kafka.brokers).toEqual([DEFAULT_ENDPOINTS.kafkaBrokers]);
    expect(config.schemaRegistryUrl).toBe(DEFAULT_ENDPOINTS.schemaRegistryUrl);
    expect(config.databaseUrl).toBe(DEFAULT_ENDPOINTS.databaseUrl);
  });

  it('knows the conflicting pairs, rollback × hotfix among them', () => {
    expect(config.conflicts.pairs).toContainEqual(['rollback', 'hotfix']);
    expect(config.conflicts.pairs).toContainEqual(['rollback', 'deploy']);
    expect(config.conflicts.windowMs).toBe(300_000);
  });

  it('has settings for every action, and keeps the defaults beside a configured one', () => {
    const tuned = loadConfig({ env: {}, overrides: { actions: { drain: { coalesceWindowMs: 5_000, waitForDuplicates: true } } } });
    expect(tuned.actions.drain).toEqual({ coalesceWindowMs: 5_000, waitForDuplicates: true, timeoutMs: 60_000, secretParams: [] });
    expect(tuned.actions.restart).toEqual(config.actions.restart);
    expect(config.actions.terminate.coalesceWindowMs).toBe(30_000);
  });

  it('treats empty variables as unset', () => {
    const fromEmpty = loadConfig({
      env: { KAFKA_BROKERS: '', DATABASE_URL: '', SCHEMA_REGISTRY_URL: '', ARBITER_LOCK_TTL_MS: '', ARBITER_TOPIC_PREFIX: '' },
    });
    expect(fromEmpty.kafka.brokers).toEqual(config.kafka.brokers);
    expect(fromEmpty.databaseUrl).toBe(config.databaseUrl);
    expect(fromEmpty.schemaRegistryUrl).toBe(config.schemaRegistryUrl);
    expect(fromEmpty.locks.ttlMs).toBe(300_000);
    expect(fromEmpty.kafka.topicPrefix).toBe('arbiter');
  });
});

describe('loadConfig from the environment', () => {
  it('takes brokers as a comma-separated list, spaces and empty items ignored', () => {
    const config = loadConfig({ env: { KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9093,,kafka-3:9094' } });
    expect(config.kafka.brokers).toEqual(['kafka-1:9092', 'kafka-2:9093', 'kafka-3:9094']);
  });

  it('takes the database URL, the lock TTL and the rest', () => {
    const config = loadConfig({
      env: {
        DATABASE_URL: 'postgresql://arbiter:secret@db:5432/arbiter',
        ARBITER_LOCK_TTL_MS: '60000',
        SCHEMA_REGISTRY_URL: 'http://registry:8081',
        ARBITER_EXECUTOR_URL: 'http://executor:9000',
        ARBITER_TOPIC_PREFIX: 'staging',
        ARBITER_GROUP_ID: 'staging-workers',
        ARBITER_WORKER_ID: 'worker-7',
        ARBITER_METRICS_PORT: '9999',
      },
    });
    expect(config.databaseUrl).toBe('postgresql://arbiter:secret@db:5432/arbiter');
    expect(config.locks.ttlMs).toBe(60_000);
    expect(config.locks.renewEveryMs).toBe(20_000);
    expect(config.schemaRegistryUrl).toBe('http://registry:8081');
    expect(config.executor.url).toBe('http://executor:9000');
    expect(config.kafka.topicPrefix).toBe('staging');
    expect(config.kafka.groupId).toBe('staging-workers');
    expect(config.worker.id).toBe('worker-7');
    expect(config.worker.metricsPort).toBe(9999);
  });

  it('rejects a TTL that is not a number', () => {
    expect(configError(() => loadConfig({ env: { ARBITER_LOCK_TTL_MS: 'five minutes' } })).message).toContain('locks.ttlMs');
  });

  it('reads the file named by ARBITER_CONFIG', () => {
    const file = configFile('kafka:\n  requestPartitions: 3\n');
    expect(loadConfig({ env: { ARBITER_CONFIG: file } }).kafka.requestPartitions).toBe(3);
  });

  it('lets overrides beat the environment', () => {
    const config = loadConfig({ env: { ARBITER_LOCK_TTL_MS: '60000' }, overrides: { locks: { ttlMs: 120_000 } } });
    expect(config.locks.ttlMs).toBe(120_000);
  });
});

describe('loadConfig from a file', () => {
  const file = configFile(
    [
      'kafka:',
      '  brokers: [file-kafka:9092]',
      '  requestPartitions: 24',
      'databaseUrl: postgres://file-db:5432/arbiter',
      'locks:',
      '  ttlMs: 90000',
      'conflicts:',
      '  pairs:',
      '    - [rollback, hotfix]',
      'budget:',
      '  defaultMinAvailable: 2',
      '',
    ].join('\n'),
  );

  it('overrides the defaults', () => {
    const config = loadConfig({ env: {}, file });
    expect(config.kafka.brokers).toEqual(['file-kafka:9092']);
    expect(config.kafka.requestPartitions).toBe(24);
    expect(config.databaseUrl).toBe('postgres://file-db:5432/arbiter');
    expect(config.locks.ttlMs).toBe(90_000);
    expect(config.locks.renewEveryMs).toBe(30_000);
    // Arrays are replaced, not merged with the default pairs.
    expect(config.conflicts.pairs).toEqual([['rollback', 'hotfix']]);
    expect(config.budget.defaultMinAvailable).toBe(2);
    // What the file does not mention keeps its default.
    expect(config.kafka.groupId).toBe('arbiter-workers');
  });

  it('is beaten by an environment variable only when the variable is set', () => {
    const set = loadConfig({
      file,
      env: { KAFKA_BROKERS: 'env-kafka:9092', DATABASE_URL: 'postgres://env-db/arbiter', ARBITER_LOCK_TTL_MS: '45000' },
    });
    expect(set.kafka.brokers).toEqual(['env-kafka:9092']);
    expect(set.databaseUrl).toBe('postgres://env-db/arbiter');
    expect(set.locks.ttlMs).toBe(45_000);

    const unset = loadConfig({ file, env: { DATABASE_URL: '' } });
    expect(unset.kafka.brokers).toEqual(['file-kafka:9092']);
    expect(unset.databaseUrl).toBe('postgres://file-db:5432/arbiter');
    expect(unset.locks.ttlMs).toBe(90_000);
  });

  it('may be JSON', () => {
    const json = configFile(JSON.stringify({ kafka: { requestPartitions: 6 }, deferral: { recheckMs: 50 } }));
    const config = loadConfig({ env: {}, file: json });
    expect(config.kafka.requestPartitions).toBe(6);
    expect(config.deferral.recheckMs).toBe(50);
  });

  it('may be empty', () => {
    expect(loadConfig({ env: {}, file: configFile('') }).kafka.requestPartitions).toBe(12);
  });

  it('says so when it cannot be read', () => {
    const missing = join(dir, 'no-such-file.yaml');
    const error = configError(() => loadConfig({ env: {}, file: missing }));
    expect(error.message).toContain(`cannot read config file ${missing}`);
    expect(error.message).toContain('ENOENT');
  });

  it('says so when it is not valid YAML', () => {
    const broken = configFile('kafka:\n  brokers: [unclosed:9092\n  requestPartitions: : 3\n');
    const error = configError(() => loadConfig({ env: {}, file: broken }));
    expect(error.message).toContain(`config file ${broken} is not valid YAML/JSON`);
  });

  it('names itself in a validation error', () => {
    const bad = configFile('kafka:\n  requestPartitions: 0\n');
    const error = configError(() => loadConfig({ env: {}, file: bad }));
    expect(error.message).toContain(`(file ${bad})`);
    expect(error.message).toContain('kafka.requestPartitions');
  });
});

describe('loadConfig validation', () => {
  it('names every problem in one error', () => {
    const file = configFile(
      [
        'kafka:',
        '  brokers: [kafka-without-port, good:9092]',
        '  sessionTimeoutMs: 30000',
        '  heartbeatIntervalMs: 10001',
        'locks:',
        '  ttlMs: -1',
        'colour: blue',
        '',
      ].join('\n'),
    );
    const error = configError(() => loadConfig({ env: {}, file }));
    const message = error.message;
    expect(message).toMatch(/problem\(s\)/);
    expect(message).toContain('kafka.brokers[0]: host:port');
    expect(message).toContain('kafka.heartbeatIntervalMs: must be at most a third of kafka.sessionTimeoutMs (30000)');
    expect(message).toContain('locks.ttlMs');
    expect(message).toContain('Unrecognized key: "colour"');
    const problems = message.split('\n').filter((line) => line.startsWith('  - '));
    expect(problems.length).toBeGreaterThanOrEqual(4);
    expect(message).toContain(`${problems.length} problem(s)`);
  });

  it('allows a heartbeat of exactly a third of the session timeout', () => {
    const config = loadConfig({ env: {}, overrides: { kafka: { sessionTimeoutMs: 30_000, heartbeatIntervalMs: 10_000 } } });
    expect(config.kafka.heartbeatIntervalMs).toBe(10_000);
  });

  it('rejects unknown keys in nested sections too', () => {
    const overrides = { locks: { ttl: 5 } } as unknown as ConfigInput;
    expect(configError(() => loadConfig({ env: {}, overrides })).message).toContain('Unrecognized key: "ttl"');
  });

  it('rejects a renewal period that is not shorter than the TTL', () => {
    const error = configError(() => loadConfig({ env: {}, overrides: { locks: { ttlMs: 5_000, renewEveryMs: 5_000 } } }));
    expect(error.message).toContain('locks.renewEveryMs: must be shorter than locks.ttlMs');
  });

  it('rejects a database URL that is not postgres, and a bad minAvailable', () => {
    const error = configError(() =>
      loadConfig({ env: { DATABASE_URL: 'mysql://db/arbiter' }, overrides: { budget: { defaultMinAvailable: 'half' } } }),
    );
    expect(error.message).toContain('databaseUrl: a postgres:// URL');
    expect(error.message).toContain('budget.defaultMinAvailable');
  });

  it('rejects an unknown action in the conflict matrix', () => {
    const overrides = { conflicts: { pairs: [['rollback', 'reboot']] } } as unknown as ConfigInput;
    expect(configError(() => loadConfig({ env: {}, overrides })).message).toContain('conflicts.pairs[0][1]');
  });
});

describe('loadConfig compiles every matcher once', () => {
  it('names the field of a budget pattern that is not a regular expression', () => {
    const file = configFile(['budget:', '  workloads:', '    - match: ".*/deployment/api"', '      minAvailable: 2', '    - match: "(unclosed"', '      minAvailable: 1', ''].join('\n'));
    const error = configError(() => loadConfig({ env: {}, file }));
    expect(error.message).toContain('budget.workloads[1].match: not a valid regular expression');
    expect(error.message).not.toContain('budget.workloads[0]');
  });

  it('names a bad scope rule and a bad policy rule in the same error', () => {
    const overrides = {
      scopeRules: [{ match: '[', scope: '$1' }],
      policy: { rules: [{ agents: ['a'], actions: ['reboot'], arns: ['**'], effect: 'deny' as const }] },
    };
    const error = configError(() => loadConfig({ env: {}, overrides }));
    expect(error.message).toMatch(/scopeRules: rule 0 .*invalid regular expression/);
    expect(error.message).toMatch(/policy: policy rule 0: action 'reboot' matches no known action/);
  });

  it('hands the worker compiled matchers: scopes, policy and budget rules', () => {
    const config = loadConfig({
      env: {},
      overrides: {
        budget: { workloads: [{ match: '.*/deployment/api', minAvailable: 3 }] },
        policy: { reservedTypes: { node: 'node-bot' } },
      },
    });
    const deployment = 'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/payments/deployment/api';
    expect(config.compiled.scopes.scopeOf(`${deployment}/pod/api-1`)).toBe(deployment);
    expect(config.compiled.budget.minAvailableFor(deployment)).toBe(3);
    expect(config.compiled.budget.minAvailableFor(`${deployment}-canary`)).toBeNull();
    expect(Object.isFrozen(config.compiled)).toBe(true);
  });
});

describe('loadConfig result', () => {
  it('is frozen all the way down', () => {
    const config = loadConfig({ env: {} });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.locks)).toBe(true);
    expect(Object.isFrozen(config.kafka.brokers)).toBe(true);
    // ES modules are strict mode: writing to a frozen object throws.
    expect(() => {
      (config as { databaseUrl: string }).databaseUrl = 'postgres://elsewhere/arbiter';
    }).toThrow(TypeError);
    expect(() => {
      (config.locks as { ttlMs: number }).ttlMs = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.kafka.brokers as string[]).push('more:9092');
    }).toThrow(TypeError);
    expect(config.locks.ttlMs).toBe(300_000);
  });

  it('is not shared between loads', () => {
    const a = loadConfig({ env: {} });
    const b = loadConfig({ env: {}, overrides: { locks: { ttlMs: 60_000 } } });
    expect(a.locks.ttlMs).toBe(300_000);
    expect(b.locks.renewEveryMs).toBe(20_000);
    expect(a.locks.renewEveryMs).toBe(100_000);
  });
});
