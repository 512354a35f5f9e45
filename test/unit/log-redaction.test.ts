import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl, scrubSecrets } from '../../src/logging/index.ts';

const SECRET = 'S3cretPassw0rd';

describe('scrubSecrets', () => {
  it('removes the password from connection strings, keeping user, host and database', () => {
    expect(scrubSecrets(`connecting to postgres://arbiter:${SECRET}@db.internal:5432/arbiter?sslmode=verify-full`)).toBe(
      'connecting to postgres://arbiter:[redacted]@db.internal:5432/arbiter?sslmode=verify-full',
    );
    expect(scrubSecrets(`postgresql://u:p%40ss@h/db and redis://:${SECRET}@cache:6379`)).toBe('postgresql://u:[redacted]@h/db and redis://:[redacted]@cache:6379');
    // A raw '@' in the password: everything up to the last '@' before the host.
    expect(scrubSecrets(`postgres://u:${SECRET}@x@h/db`)).not.toContain(SECRET);
  });
  it('leaves URLs without a password alone', () => {
    for (const text of ['http://127.0.0.1:8081/apis/ccompat/v7', 'postgres://postgres@127.0.0.1:5432/arbiter', 'kafka 127.0.0.1:9092']) {
      expect(scrubSecrets(text)).toBe(text);
    }
  });
  it('removes password settings and bearer tokens', () => {
    expect(scrubSecrets(`host=db user=arbiter password=${SECRET} sslmode=require`)).toBe('host=db user=arbiter password=[redacted] sslmode=require');
    expect(scrubSecrets(`postgres://h/db?user=u&password=${SECRET}&sslpassword=${SECRET}`)).not.toContain(SECRET);
    expect(scrubSecrets(`{"sasl":{"mechanism":"scram-sha-512","password":"${SECRET}"}}`)).not.toContain(SECRET);
    expect(JSON.parse(scrubSecrets(`{"analystPassword":null,"password":12345678,"sslpassword":"a\\"b"}`))).toEqual({
      analystPassword: null,
      password: '[redacted]',
      sslpassword: '[redacted]',
    });
    expect(scrubSecrets(`authorization: Bearer ${SECRET}.abc-def`)).toBe('authorization: Bearer [redacted]');
  });
  it('redactUrl keeps a URL usable for display', () => {
    expect(redactUrl(`postgres://arbiter:${SECRET}@db:5432/arbiter`)).toBe('postgres://arbiter:%5Bredacted%5D@db:5432/arbiter');
    expect(redactUrl('postgres://arbiter@db/arbiter')).toBe('postgres://arbiter@db/arbiter');
  });
});

describe('createLogger', () => {
  const capture = () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    return { lines, log: createLogger({ level: 'debug', destination }) };
  };

  it('censors secret fields and scrubs secrets from messages, bindings and errors', () => {
    const { lines, log } = capture();
    const url = `postgres://postgres:${SECRET}@127.0.0.1:5432/arbiter`;
    log.info({ databaseUrl: url, config: { databaseUrl: url, kafka: { sasl: { mechanism: 'plain', username: 'u', password: SECRET } } } }, 'starting');
    log.child({ target: url }).debug(`connecting to ${url}`);
    log.error({ err: new Error(`connect ECONNREFUSED for ${url}`) }, 'database unreachable');
    log.warn({ audit: { analystPassword: SECRET }, executor: { bearerToken: SECRET, hmacKey: SECRET } }, 'config');
    expect(lines.length).toBe(4);
    for (const line of lines) expect(line).not.toContain(SECRET);
    expect(lines[0]).toContain('[redacted]');
    expect(lines[1]).toContain('postgres://postgres:[redacted]@127.0.0.1:5432/arbiter');
    expect(JSON.parse(lines[2]!).err.message).toBe('connect ECONNREFUSED for postgres://postgres:[redacted]@127.0.0.1:5432/arbiter');
  });
});
