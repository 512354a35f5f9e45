import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../src/audit/index.ts';
import { createPool, migrate, type Pool } from '../../src/db/index.ts';
import { runArbiterCli } from '../support/cli.ts';
import { endpoints } from '../support/endpoints.ts';
import { startTempPostgres, type TempPostgres } from '../support/temp-postgres.ts';

const exec = promisify(execFile);

/**
 * TLS to PostgreSQL (`sslmode` in DATABASE_URL, src/db/pool.ts). The shared server on 5432 runs
 * without TLS and is never touched: this file starts its own throw-away cluster (initdb into a
 * temporary directory, its own port) with ssl=on, a server certificate for 127.0.0.1/localhost
 * signed by a CA made here with openssl, and a pg_hba.conf that accepts `hostssl` only.
 */
describe('PostgreSQL over TLS', () => {
  let server: TempPostgres | undefined;
  let dir = '';
  let port = 0;
  const pools: Pool[] = [];
  const urlFor = (query: string, host = '127.0.0.1') => `postgres://postgres@${host}:${port}/arbiter_tls?${query}`;
  const pool = (url: string) => {
    const created = createPool(url, { max: 2, connectTimeoutMs: 10_000 });
    pools.push(created);
    return created;
  };
  /** Whether the server itself sees this session as TLS. */
  const sslOnServer = async (db: Pool) =>
    (await db.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0]?.ssl;

  beforeAll(async () => {
    server = await startTempPostgres({
      prepare: makeCertificates,
      // TLS only: no `host` line, so a session without encryption matches no entry and is refused.
      hba: 'local all all trust\nhostssl all all 127.0.0.0/8 trust\n',
      // Relative to the data directory: the certificates sit beside it.
      settings: ['ssl = on', "ssl_cert_file = '../server.pem'", "ssl_key_file = '../server.key'"],
    });
    ({ dir, port } = server);
  });

  afterAll(async () => {
    for (const p of pools) await p.end().catch(() => undefined);
    await server?.stop();
  });

  it('migrates and serves the worker over sslmode=verify-full with the right CA, and the server sees TLS', async () => {
    const url = urlFor(`sslmode=verify-full&sslrootcert=${join(dir, 'ca.pem')}`);
    const result = await migrate(url);
    expect(result.createdDatabase).toBe(true);
    expect(result.applied.length).toBeGreaterThan(5);

    const db = pool(url);
    expect(await sslOnServer(db)).toBe(true);
    // What the worker writes and reads, through the worker's own pool factory.
    const store = new AuditStore(db, 'tls-test');
    const arn = 'arn:aws:ec2:eu-west-1:123456789012:instance/i-tls';
    await store.recordObservation(arn, 'tls-test', 3, { state: 'running' });
    const stored = await db.query('SELECT version FROM arbiter.observations WHERE resource_arn = $1', [arn]);
    expect(stored.rows).toEqual([{ version: 3 }]);
    expect(await store.finalDecisions([randomUUID()])).toEqual(new Map());
    expect(await store.resourceVersion(arn)).toBeNull();

    // The host name is checked too: localhost is in the certificate, 127.0.0.2 is not.
    expect(await sslOnServer(pool(urlFor(`sslmode=verify-full&sslrootcert=${join(dir, 'ca.pem')}`, 'localhost')))).toBe(true);
    await expect(pool(urlFor(`sslmode=verify-full&sslrootcert=${join(dir, 'ca.pem')}`, '127.0.0.2')).query('SELECT 1')).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    // verify-ca checks the chain only, as in libpq.
    expect(await sslOnServer(pool(urlFor(`sslmode=verify-ca&sslrootcert=${join(dir, 'ca.pem')}`, '127.0.0.2')))).toBe(true);
  });

  it('runs `arbiter migrate` (the CLI) over verify-full', async () => {
    const url = urlFor(`sslmode=verify-full&sslrootcert=${join(dir, 'ca.pem')}`);
    const cli = await runArbiterCli(['migrate'], {
      ...process.env,
      DATABASE_URL: url,
      KAFKA_BROKERS: endpoints.kafkaBrokers,
      SCHEMA_REGISTRY_URL: endpoints.schemaRegistryUrl,
    });
    expect(cli.stderr + cli.stdout).not.toMatch(/certificate|SSL|no pg_hba/i);
    expect(cli.code).toBe(0);
  });

  it('sslmode=require encrypts without checking the server (libpq semantics)', async () => {
    expect(await sslOnServer(pool(urlFor('sslmode=require')))).toBe(true);
  });

  it('verify-full with another CA fails with a certificate error', async () => {
    const wrong = pool(urlFor(`sslmode=verify-full&sslrootcert=${join(dir, 'other-ca.pem')}`));
    const error = await wrong.query('SELECT 1').then(
      () => null,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(error).not.toBeNull();
    expect(error!.code).toMatch(/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/);
    expect(error!.message).toMatch(/certificate/);
  });

  it('a connection without TLS is refused: pg_hba.conf allows hostssl only', async () => {
    await expect(pool(urlFor('sslmode=disable')).query('SELECT 1')).rejects.toMatchObject({
      code: '28000',
      message: expect.stringMatching(/no pg_hba\.conf entry .*no encryption/),
    });
  });

  it('refuses sslmode values node-postgres cannot honour', () => {
    expect(() => createPool(urlFor('sslmode=prefer'))).toThrow(/sslmode=prefer is not supported/);
  });
});

/** A CA, a server certificate it signs (127.0.0.1 and localhost), and an unrelated second CA. */
async function makeCertificates(dir: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const caExtensions = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  for (const name of ['ca', 'other-ca']) {
    await exec('openssl', ['req', '-x509', ...ec, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`), '-days', '2', '-subj', `/CN=arbiter test ${name}`, ...caExtensions]);
  }
  await exec('openssl', ['req', ...ec, '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  await exec('openssl', ['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', join(dir, 'server.pem'), '-days', '2', '-extfile', join(dir, 'server.ext')]);
  // PostgreSQL refuses a key others may read.
  await chmod(join(dir, 'server.key'), 0o600);
}
