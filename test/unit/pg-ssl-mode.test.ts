import { describe, expect, it } from 'vitest';
import { pgConnectionString } from '../../src/db/index.ts';

describe('pgConnectionString (libpq meaning of sslmode)', () => {
  it('asks node-postgres for libpq semantics when sslmode is set, leaving the rest of the URL as written', () => {
    expect(pgConnectionString('postgres://u:p%40ss%2F@db:5432/a?sslmode=require&options=-c%20role%3Dx')).toBe(
      'postgres://u:p%40ss%2F@db:5432/a?sslmode=require&options=-c%20role%3Dx&uselibpqcompat=true',
    );
    expect(pgConnectionString('postgres://db/a?sslmode=verify-full&sslrootcert=/ca.pem#x')).toBe(
      'postgres://db/a?sslmode=verify-full&sslrootcert=/ca.pem&uselibpqcompat=true#x',
    );
  });

  it('leaves a URL without sslmode, or one that chose uselibpqcompat itself, untouched', () => {
    expect(pgConnectionString('postgres://postgres@127.0.0.1:5432/arbiter')).toBe('postgres://postgres@127.0.0.1:5432/arbiter');
    expect(pgConnectionString('postgres://db/a?sslmode=no-verify&uselibpqcompat=false')).toBe('postgres://db/a?sslmode=no-verify&uselibpqcompat=false');
  });

  it('refuses modes node-postgres cannot honour, naming the supported ones', () => {
    for (const mode of ['prefer', 'allow', 'no-verify', 'verify_full']) {
      expect(() => pgConnectionString(`postgres://db/a?sslmode=${mode}`)).toThrow(`sslmode=${mode} is not supported; use one of disable, require, verify-ca, verify-full`);
    }
  });
});
