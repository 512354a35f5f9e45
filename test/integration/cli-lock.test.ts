import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDatabase, migrate } from '../../src/db/index.ts';
import { databaseUrlFor, dropDatabase } from '../support/harness.ts';

const exec = promisify(execFile);
const ARN = 'arn:sim:k8s:local:000000000000:cluster/prod/node/cli-node-1';

describe('`arbiter lock` for agents acting directly', () => {
  // This run's own database: a pid comes round again, and a database left by a run that died
  // before its afterAll would then bring that run's locks and lock log into this one.
  const databaseUrl = databaseUrlFor(`arbiter_cli_lock_${randomUUID().slice(0, 8)}`);
  const cli = async (args: string[], allowFailure = false) => {
    try {
      const { stdout } = await exec(process.execPath, ['bin/arbiter.js', 'lock', ...args, '--json'], { env: { ...process.env, DATABASE_URL: databaseUrl } });
      return { code: 0, json: JSON.parse(stdout) };
    } catch (error) {
      const e = error as { code: number; stdout: string };
      if (!allowFailure) throw error;
      return { code: e.code, json: JSON.parse(e.stdout) };
    }
  };

  beforeAll(async () => {
    await ensureDatabase(databaseUrl);
    await migrate(databaseUrl);
  });
  afterAll(async () => {
    await dropDatabase(databaseUrl);
  });

  it('acquire, contend, list, renew, release — each recorded in the lock log', async () => {
    const first = await cli(['acquire', '--arn', ARN, '--agent', 'sre-alice', '--ttl', '60']);
    expect(first.json).toMatchObject({ acquired: true });
    const token = first.json.fencingToken as number;

    const contended = await cli(['acquire', '--arn', ARN, '--agent', 'sre-bob', '--ttl', '60'], true);
    expect(contended.code).toBe(4);
    expect(contended.json).toMatchObject({ acquired: false, holder: { agentId: 'sre-alice', fencingToken: token } });

    const listed = await cli(['list', '--arn', ARN]);
    expect(listed.json).toMatchObject([{ resourceArn: ARN, agentId: 'sre-alice', fencingToken: token }]);

    expect((await cli(['renew', '--arn', ARN, '--agent', 'sre-alice', '--token', String(token)])).json).toEqual({ renewed: true });
    expect((await cli(['release', '--arn', ARN, '--agent', 'sre-bob', '--token', String(token)], true)).json).toEqual({ released: false });
    expect((await cli(['release', '--arn', ARN, '--agent', 'sre-alice', '--token', String(token)])).json).toEqual({ released: true });

    const next = await cli(['acquire', '--arn', ARN, '--agent', 'sre-bob']);
    expect(next.json.fencingToken).toBe(token + 1);

    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const { rows } = await db.query('SELECT event, agent_id FROM arbiter.lock_events WHERE resource_arn = $1 ORDER BY at', [ARN]);
    await db.end();
    expect(rows.map((r) => `${r.event}:${r.agent_id}`)).toEqual([
      'acquired:sre-alice',
      'acquire_failed:sre-bob',
      'renewed:sre-alice',
      'released:sre-alice',
      'acquired:sre-bob',
    ]);
  });
});
