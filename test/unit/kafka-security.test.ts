import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { ArbiterError } from '../../src/contract/errors.ts';
import { kafkaSecurityOptions, resolveKafkaSecurity } from '../../src/contract/kafka-client.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbiter-kafka-security-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n');
const cert = file('client.pem', '-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n');
const key = file('client.key', '-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n');
const passwordFile = file('password', 's3cret-from-file\n');
const SECRET = 'hunter2-inline-secret';

function configError(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ArbiterError);
    expect((error as ArbiterError).code).toBe('CONFIG_INVALID');
    return (error as ArbiterError).message;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('kafka.ssl / kafka.sasl → kafkajs options', () => {
  it('without either, the client options are empty: plaintext, as before', () => {
    const config = loadConfig({ env: {} });
    expect(config.kafka.ssl.enabled).toBe(false);
    expect(config.kafka.sasl ?? null).toBeNull();
    expect(kafkaSecurityOptions(config)).toEqual({});
  });

  it('maps the environment to ssl (files read) and scram-sha-512 sasl', () => {
    const config = loadConfig({
      env: {
        KAFKA_SSL_CA_FILE: ca,
        KAFKA_SSL_SERVERNAME: 'localhost',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'worker',
        KAFKA_SASL_PASSWORD_FILE: passwordFile,
      },
    });
    expect(config.kafka.ssl.enabled).toBe(true);
    expect(kafkaSecurityOptions(config)).toEqual({
      ssl: { rejectUnauthorized: true, ca: ['-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n'], servername: 'localhost' },
      sasl: { mechanism: 'scram-sha-512', username: 'worker', password: 's3cret-from-file' },
    });
  });

  it('maps the file settings: mutual TLS, plain and scram-sha-256', () => {
    const tls = loadConfig({ env: {}, overrides: { kafka: { ssl: { enabled: true, certFile: cert, keyFile: key, rejectUnauthorized: false } } } });
    expect(kafkaSecurityOptions(tls).ssl).toEqual({ rejectUnauthorized: false, cert: expect.stringContaining('CLIENT'), key: expect.stringContaining('KEY') });
    expect(kafkaSecurityOptions(tls).sasl).toBeUndefined();
    for (const mechanism of ['plain', 'scram-sha-256'] as const) {
      const config = loadConfig({ env: {}, overrides: { kafka: { sasl: { mechanism, username: 'agent', password: SECRET } } } });
      expect(kafkaSecurityOptions(config)).toEqual({ sasl: { mechanism, username: 'agent', password: SECRET } });
    }
  });

  it('env beats the file; KAFKA_SSL_ENABLED=false turns TLS off', () => {
    const configFile = file('arbiter.yaml', `kafka:\n  brokers: ['h:9093']\n  ssl: { enabled: true }\n  sasl: { mechanism: plain, username: from-file, password: x }\n`);
    const config = loadConfig({ file: configFile, env: { KAFKA_SSL_ENABLED: 'false', KAFKA_SASL_USERNAME: 'from-env' } });
    expect(kafkaSecurityOptions(config)).toEqual({ sasl: { mechanism: 'plain', username: 'from-env', password: 'x' } });
  });

  it('the password never shows in the loaded config, JSON, inspect or the security object', () => {
    const config = loadConfig({ env: { KAFKA_SASL_USERNAME: 'worker', KAFKA_SASL_PASSWORD: SECRET, KAFKA_SSL_ENABLED: 'true' } });
    expect(JSON.stringify(config)).not.toContain(SECRET);
    expect(inspect(config, { depth: 20 })).not.toContain(SECRET);
    expect(inspect(config.compiled.kafkaSecurity, { depth: 20, showHidden: true })).not.toContain(SECRET);
    expect(JSON.stringify(config.compiled.kafkaSecurity)).toContain('[redacted]');
    expect(config.kafka.sasl?.password).toBeUndefined();
    expect(kafkaSecurityOptions(config).sasl).toMatchObject({ password: SECRET });
    const fromFile = loadConfig({ env: { KAFKA_SASL_USERNAME: 'worker', KAFKA_SASL_PASSWORD_FILE: passwordFile } });
    expect(JSON.stringify(fromFile)).not.toContain('s3cret-from-file');
  });

  it('names every problem at once', () => {
    const message = configError(() =>
      loadConfig({
        env: {},
        overrides: {
          kafka: {
            ssl: { enabled: true, caFile: join(dir, 'missing-ca.pem'), certFile: cert },
            sasl: { mechanism: 'scram-sha-512', username: 'worker', password: SECRET, passwordFile },
          },
        },
      }),
    );
    expect(message).toContain('kafka.ssl.keyFile: a client certificate needs both certFile and keyFile');
    expect(message).toContain('kafka.sasl.passwordFile: set kafka.sasl.password or kafka.sasl.passwordFile, not both');
    expect(message).not.toContain(SECRET);

    const files = configError(() =>
      loadConfig({ env: { KAFKA_SSL_CA_FILE: join(dir, 'missing-ca.pem'), KAFKA_SASL_USERNAME: 'w', KAFKA_SASL_PASSWORD_FILE: file('empty', '\n') } }),
    );
    expect(files).toMatch(/kafka\.ssl\.caFile: cannot read CA file .*missing-ca\.pem: ENOENT/);
    expect(files).toMatch(/kafka\.sasl\.passwordFile: password file .* is empty/);

    const missing = configError(() => loadConfig({ env: { KAFKA_SASL_USERNAME: 'w', KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SSL_REJECT_UNAUTHORIZED: 'maybe' } }));
    expect(missing).toContain('kafka.sasl.mechanism');
    expect(missing).toContain('kafka.ssl.rejectUnauthorized');

    const noPassword = configError(() => loadConfig({ env: { KAFKA_SASL_USERNAME: 'w' } }));
    expect(noPassword).toContain('kafka.sasl.password: required');

    const off = configError(() => loadConfig({ env: {}, overrides: { kafka: { ssl: { caFile: ca } } } }));
    expect(off).toContain('kafka.ssl.caFile: is set but kafka.ssl.enabled is false');
  });

  it('resolveKafkaSecurity reads through the given reader and strips one trailing newline', () => {
    const { security, problems } = resolveKafkaSecurity(
      { enabled: true, rejectUnauthorized: true, caFile: 'ca' },
      { mechanism: 'scram-sha-256', username: 'u', passwordFile: 'pw' },
      (name) => (name === 'pw' ? 'p a ss\n' : 'CA'),
    );
    expect(problems).toEqual([]);
    expect(security.options()).toEqual({ ssl: { rejectUnauthorized: true, ca: ['CA'] }, sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p a ss' } });
  });
});
