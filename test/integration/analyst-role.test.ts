import { readFileSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYST_VIEWS } from '../../src/audit/index.ts';
import { migrate } from '../../src/db/index.ts';
import { ANALYST_ROLE, scramSha256Verifier } from '../../src/db/migrate.ts';
import { databaseUrlFor, dropDatabase } from '../support/harness.ts';

/**
 * The role `arbiter_analyst` (migrations/0008_analyst-role.sql, password set by migrate): it may
 * log in and SELECT from every analyst view, and is refused on every table — request payloads,
 * dead letters, working state. The role belongs to the server, so the test notes how it found it
 * and puts it back.
 *
 * Authentication: the test server's pg_hba trusts every user on 127.0.0.1, so a password is not
 * checked there. What is proved instead: migrate stores a SCRAM-SHA-256 verifier of exactly the
 * configured password (computed against the server's own hashing), LOGIN follows the config, and
 * where pg_hba asks for a password a wrong one is refused.
 */
describe('the analyst role', () => {
  const suffix = randomUUID().slice(0, 8);
  const databaseUrl = databaseUrlFor(`arbiter_analyst_${suffix}`);
  // Roles are the server's, grants each database's: two more databases migrating at once.
  const others = [databaseUrlFor(`arbiter_analyst_${suffix}_b`), databaseUrlFor(`arbiter_analyst_${suffix}_c`)];
  const password = `it's a \\ "$$" pass-${suffix}`;
  let admin: pg.Client;
  let before: { rolcanlogin: boolean; rolpassword: string | null } | undefined;

  const asAnalyst = (url: string, secret = password) => {
    const u = new URL(url);
    u.username = ANALYST_ROLE;
    u.password = secret;
    return new pg.Client({ connectionString: u.toString() });
  };
  const role = async () =>
    (await admin.query<{ rolcanlogin: boolean; rolpassword: string | null }>('SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = $1', [ANALYST_ROLE])).rows[0];
  /** Whether a stored verifier is one of this password (its salt and iterations, our hashing). */
  const verifies = (stored: string | null | undefined, secret: string) => {
    const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored ?? '');
    if (!m) return false;
    return scramSha256Verifier(secret, { iterations: Number(m[1]), salt: Buffer.from(m[2]!, 'base64') }) === stored;
  };

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: databaseUrlFor('postgres') });
    await admin.connect();
    const existed = await role();
    before = existed ? { rolcanlogin: existed.rolcanlogin, rolpassword: existed.rolpassword } : undefined;
    const result = await migrate(databaseUrl, () => {}, { analystPassword: password });
    expect(result.analystLogin).toBe('enabled');
  });
  afterAll(async () => {
    if (before) {
      await admin
        .query(`ALTER ROLE ${ANALYST_ROLE} ${before.rolcanlogin ? 'LOGIN' : 'NOLOGIN'} PASSWORD ${before.rolpassword === null ? 'NULL' : pg.escapeLiteral(before.rolpassword)}`)
        .catch(() => undefined);
    }
    await admin?.end();
    for (const url of [databaseUrl, ...others]) await dropDatabase(url);
  });

  it('can log in and SELECT from every analyst view', async () => {
    const analyst = asAnalyst(databaseUrl);
    await analyst.connect();
    try {
      expect((await analyst.query('SELECT current_user AS who')).rows[0].who).toBe(ANALYST_ROLE);
      for (const view of ANALYST_VIEWS) {
        const { rows } = await analyst.query(`SELECT count(*)::int AS n FROM arbiter.${view}`);
        expect(rows[0].n, view).toBe(0);
      }
    } finally {
      await analyst.end();
    }
  });

  it('is refused on requests (payloads), dead_letters and request_state — and on every other table and partition', async () => {
    const owner = new pg.Client({ connectionString: databaseUrl });
    await owner.connect();
    const analyst = asAnalyst(databaseUrl);
    await analyst.connect();
    try {
      const denied = async (sql: string) => {
        const error = await analyst.query(sql).then(
          () => null,
          (e: { code?: string; message: string }) => e,
        );
        expect(error, sql).not.toBeNull();
        expect(error!.code, `${sql}: ${error!.message}`).toBe('42501');
        expect(error!.message).toMatch(/^permission denied for (table|sequence|view) /);
      };
      await denied('SELECT params FROM arbiter.requests');
      await denied('SELECT count(*) FROM arbiter.requests');
      await denied('SELECT record_value FROM arbiter.dead_letters');
      await denied('SELECT request FROM arbiter.request_state');

      const { rows: all } = await owner.query<{ name: string; kind: string }>(
        `SELECT c.relname AS name, c.relkind::text AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'arbiter' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') ORDER BY 1`,
      );
      const tablesOnly = all.filter((r) => r.kind !== 'v');
      expect(tablesOnly.map((t) => t.name)).toEqual(expect.arrayContaining(['request_log', 'decision_log', 'duplicates', 'dead_letters', 'request_state', 'resource_state', 'locks', 'observations', 'plan_outbox', 'migrations']));
      for (const t of tablesOnly) await denied(`SELECT 1 FROM arbiter.${pg.escapeIdentifier(t.name)} LIMIT 1`);
      // What it may read is exactly the analyst views.
      const { rows: readable } = await owner.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'arbiter' AND has_table_privilege($1, c.oid, 'SELECT') ORDER BY 1`,
        [ANALYST_ROLE],
      );
      expect(readable.map((r) => r.name)).toEqual([...ANALYST_VIEWS].sort());
      // And it writes nothing, not even through a view.
      await denied("UPDATE arbiter.inconsistencies SET status = 'resolved'");
      // (ttl_expirations is a simple view, so PostgreSQL would write through it given the right.)
      await denied("DELETE FROM arbiter.ttl_expirations WHERE owner = 'x'");
    } finally {
      await analyst.end();
      await owner.end();
    }
  });

  it('no analyst view carries a payload column: request params, the stored request, dead-letter bytes', async () => {
    const owner = new pg.Client({ connectionString: databaseUrl });
    await owner.connect();
    try {
      const { rows } = await owner.query<{ view: string; col: string }>(
        `SELECT table_name AS view, column_name AS col FROM information_schema.columns WHERE table_schema = 'arbiter' AND table_name = ANY($1)`,
        [[...ANALYST_VIEWS]],
      );
      expect(new Set(rows.map((r) => r.view))).toEqual(new Set(ANALYST_VIEWS));
      expect(rows.filter((r) => ['params', 'request', 'record_key', 'record_value', 'headers', 'payload', 'expected_state', 'state'].includes(r.col))).toEqual([]);
    } finally {
      await owner.end();
    }
  });

  it('migrate stores a SCRAM verifier of exactly the configured password (the plain text never sent), computed as PostgreSQL computes it', async () => {
    const stored = (await role())!;
    expect(stored.rolcanlogin).toBe(true);
    expect(stored.rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(verifies(stored.rolpassword, password)).toBe(true);
    expect(verifies(stored.rolpassword, `${password}x`)).toBe(false);

    // Our hashing against the server's: let PostgreSQL hash a password for a throwaway role.
    const probe = `arbiter_scram_probe_${suffix}`;
    await admin.query("SET password_encryption = 'scram-sha-256'");
    await admin.query(`CREATE ROLE ${probe} NOLOGIN PASSWORD ${pg.escapeLiteral(password)}`);
    try {
      const { rows } = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [probe]);
      expect(verifies(rows[0].rolpassword, password)).toBe(true);
    } finally {
      await admin.query(`DROP ROLE ${probe}`);
    }

    // Outside printable ASCII the server hashes it (its SASLprep), sent as a quoted literal; the verifier still matches.
    const unicode = `pä'ss\\wörd-${suffix}`;
    await migrate(databaseUrl, () => {}, { analystPassword: unicode });
    expect(verifies((await role())!.rolpassword, unicode)).toBe(true);
    await migrate(databaseUrl, () => {}, { analystPassword: password });
  });

  it('no password: migrate makes the role NOLOGIN (login refused); leaving the option out does not touch it', async () => {
    expect((await migrate(databaseUrl)).analystLogin).toBe('unchanged');
    expect((await role())!.rolcanlogin).toBe(true);
    try {
      expect((await migrate(databaseUrl, () => {}, { analystPassword: null })).analystLogin).toBe('disabled');
      expect(await role()).toMatchObject({ rolcanlogin: false, rolpassword: null });
      const refused = asAnalyst(databaseUrl);
      await expect(refused.connect()).rejects.toThrow(/not permitted to log in/);
      await refused.end().catch(() => undefined);
    } finally {
      await migrate(databaseUrl, () => {}, { analystPassword: password });
    }
    expect((await role())!.rolcanlogin).toBe(true);
  });

  it('several databases on one server migrating at once: the role is made once, each database grants its views', async () => {
    const results = await Promise.all(others.map((url) => migrate(url, () => {}, { analystPassword: password })));
    expect(results.map((r) => r.applied.includes('0008_analyst-role'))).toEqual([true, true]);
    for (const url of others) {
      const analyst = asAnalyst(url);
      await analyst.connect();
      try {
        expect((await analyst.query('SELECT count(*)::int AS n FROM arbiter.agent_activity')).rows[0].n).toBe(0);
        await expect(analyst.query('SELECT 1 FROM arbiter.requests')).rejects.toThrow(/permission denied/);
      } finally {
        await analyst.end();
      }
    }
    expect((await admin.query('SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1', [ANALYST_ROLE])).rows[0].n).toBe(1);
  });

  it('with pg_hba asking arbiter_analyst for a password: a wrong one is refused, the configured one accepted', async () => {
    // The test server trusts 127.0.0.1, where no password is checked: for this test, a rule in
    // front of the others makes the server ask this role (only) for its SCRAM password.
    const hbaFile = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
    const original = readFileSync(hbaFile, 'utf8');
    writeFileSync(hbaFile, `host all ${ANALYST_ROLE} 127.0.0.1/32 scram-sha-256\n${original}`);
    await admin.query('SELECT pg_reload_conf()');
    try {
      const method = await admin.query<{ auth_method: string }>(
        `SELECT auth_method FROM pg_hba_file_rules WHERE $1 = ANY (user_name) AND address = '127.0.0.1' ORDER BY line_number LIMIT 1`,
        [ANALYST_ROLE],
      );
      expect(method.rows[0]?.auth_method).toBe('scram-sha-256');
      const wrong = asAnalyst(databaseUrl, 'not-the-password');
      await expect(wrong.connect()).rejects.toThrow(/password authentication failed/);
      await wrong.end().catch(() => undefined);
      const right = asAnalyst(databaseUrl);
      await right.connect();
      await right.end();
    } finally {
      writeFileSync(hbaFile, original);
      await admin.query('SELECT pg_reload_conf()');
    }
  });
});
