import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../src/audit/index.ts';
import { createPool, migrate, type Pool } from '../../src/db/index.ts';
import { LockStore } from '../../src/locks/index.ts';
import { startTempPostgres, type TempPostgres } from '../support/temp-postgres.ts';

const SQL_DIR = new URL('../../helm/arbiter/files/postgres/', import.meta.url).pathname;

/**
 * The logins docker-compose.yml gives each component (helm/arbiter/files/postgres: db-init before
 * migrate, db-logins after), run the way compose runs them (psql -f as the superuser), on a
 * throw-away cluster because roles are server-wide: migrate as arbiter_deploy (not a superuser),
 * the worker's store as arbiter_compose_worker, the lock API as arbiter_compose_locks, each held
 * to its role's rights.
 */
describe('per-component database logins (compose)', () => {
  let server: TempPostgres | undefined;
  const pools: Pool[] = [];
  const urlAs = (login: string) => `postgres://${login}@127.0.0.1:${server!.port}/arbiter`;
  const poolAs = (login: string) => {
    const pool = createPool(urlAs(login), 2);
    pools.push(pool);
    return pool;
  };
  const psql = (file: string, database = 'postgres') => server!.client('psql', ['-U', 'postgres', '-d', database, '-v', 'ON_ERROR_STOP=1', '-f', `${SQL_DIR}${file}`]);
  const sqlstate = (promise: Promise<unknown>) => promise.then(() => 'ok', (error: { code?: string }) => error.code ?? String(error));

  beforeAll(async () => {
    server = await startTempPostgres({ hba: 'local all all trust\nhost all all 127.0.0.0/8 trust\n' });
    // Twice each: compose runs them at every `up`.
    await psql('db-init.sql');
    await psql('db-init.sql');
    await migrate(urlAs('arbiter_deploy'));
    await psql('db-logins.sql', 'arbiter');
    await psql('db-logins.sql', 'arbiter');
  });
  afterAll(async () => {
    for (const pool of pools) await pool.end().catch(() => undefined);
    await server?.stop();
  });

  it('migrate ran as a login that is not a superuser, and the schema belongs to arbiter_migrator', async () => {
    const db = poolAs('arbiter_deploy');
    const { rows } = await db.query(
      `SELECT r.rolsuper, r.rolcreaterole, pg_has_role('arbiter_deploy', 'arbiter_migrator', 'MEMBER') AS migrator,
              (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'arbiter') AS schema_owner
         FROM pg_roles r WHERE r.rolname = current_user`,
    );
    expect(rows).toEqual([{ rolsuper: false, rolcreaterole: true, migrator: true, schema_owner: 'arbiter_migrator' }]);
    // Migrating again (the next release) as the same login is a no-op.
    expect((await migrate(urlAs('arbiter_deploy'))).applied).toEqual([]);
  });

  it('the worker login writes the audit trail but cannot rewrite it', async () => {
    const db = poolAs('arbiter_compose_worker');
    expect((await db.query('SELECT current_user AS who, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su')).rows).toEqual([
      { who: 'arbiter_compose_worker', su: false },
    ]);
    const store = new AuditStore(db, 'compose-worker');
    await store.recordObservation('arn:aws:ec2:eu-west-1:1:instance/i-1', 'test', 1, { up: true });
    expect(await store.resourceVersion('arn:aws:ec2:eu-west-1:1:instance/i-1')).toBeNull();
    expect(await sqlstate(db.query('DELETE FROM arbiter.lock_events'))).toBe('42501');
    expect(await sqlstate(db.query('DELETE FROM arbiter.observations'))).toBe('42501');
    expect(await sqlstate(db.query('CREATE TABLE arbiter.mine (x int)'))).toBe('42501');
  });

  it('the locks login runs the lock API and reads nothing else', async () => {
    const db = poolAs('arbiter_compose_locks');
    const locks = new LockStore(db);
    const got = await locks.acquire({ resourceArn: 'arn:aws:ec2:eu-west-1:1:instance/i-2', owner: 'agent:a', agentId: 'a', ttlMs: 5_000 });
    expect(got.acquired).toBe(true);
    expect(await sqlstate(db.query('SELECT * FROM arbiter.observations'))).toBe('42501');
    expect(await sqlstate(db.query('SELECT * FROM arbiter.request_state'))).toBe('42501');
  });
});
