import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeArrivals } from '../../src/audit/arrivals.ts';
import type { ArrivalRow } from '../../src/audit/rows.ts';
import { coalesceKey } from '../../src/coalesce/index.ts';
import { inFlightFollower } from '../../src/contract/decision.ts';
import { buildRequest } from '../../src/contract/request.ts';
import { createPool, migrate, type Pool } from '../../src/db/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { databaseUrlFor, dropDatabase } from '../support/harness.ts';

/**
 * Two owners of one partition for a moment (a rebalance) can write the same records at once. The
 * arrival statement checks for known ids first, but the other owner's rows are not visible to it
 * until that owner commits: ON CONFLICT skips them, and the statement answers which ids it did not
 * write ('taken'), so the worker applies only its own. A chunk written alone answers no rows.
 */
describe('the arrival statement when another owner writes the same records at once', () => {
  const databaseUrl = databaseUrlFor(`arbiter_race_${randomUUID().slice(0, 8)}`);
  let pool: Pool;
  const scope = deploymentArn('race', 'api');
  const arn = podArn(scope, 'api', 0);

  beforeAll(async () => {
    await migrate(databaseUrl);
    pool = createPool(databaseUrl, 4);
  });
  afterAll(async () => {
    await pool?.end();
    await dropDatabase(databaseUrl);
  });

  const row = (offset: number, decision: ArrivalRow['decision']): ArrivalRow => ({
    request: buildRequest({ agentId: `agent-${offset}`, resourceArn: arn, action: 'restart', reason: 'not ready', incidentId: 'inc-1' }),
    scope,
    topic: 'race.requests',
    partition: 0,
    offset: String(offset),
    reroutedFrom: null,
    coalesceKey: coalesceKey(arn, 'restart', {}),
    decision,
  });

  it('applies only what it wrote: the other owner’s primary and duplicate are not fresh, its own new record is', async () => {
    const primary = row(0, { status: 'ACCEPTED', rule: 'accept', notBefore: Date.now(), detail: 'accepted' });
    const duplicate = row(1, inFlightFollower(primary.request.requestId));
    const mine = row(2, inFlightFollower(primary.request.requestId));
    const rerouted = row(3, { status: 'REROUTED', rule: 'route', toPartition: 1, detail: 'moved' });

    const other = await pool.connect();
    try {
      await other.query('BEGIN');
      const first = await writeArrivals(other, 'worker-a', { arrivals: [primary, duplicate], deadLetters: [] });
      expect(first.kind === 'written' && [...first.fresh].sort()).toEqual([primary, duplicate].map((r) => r.request.requestId).sort());
      // The second owner's statement waits on the first owner's uncommitted rows...
      const second = writeArrivals(pool, 'worker-b', { arrivals: [primary, duplicate, mine, rerouted], deadLetters: [] });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await other.query('COMMIT');
      // ...then writes only what was not written meanwhile.
      const result = await second;
      expect(result.kind === 'written' && [...result.fresh]).toEqual([mine.request.requestId]);
    } finally {
      other.release();
    }
    const writers = await pool.query<{ request_id: string; worker_id: string }>(
      `SELECT request_id::text, worker_id FROM arbiter.duplicates UNION ALL SELECT request_id::text, worker_id FROM arbiter.decision_log ORDER BY 1`,
    );
    const by = (id: string) => writers.rows.filter((r) => r.request_id === id).map((r) => r.worker_id);
    expect(by(primary.request.requestId)).toEqual(['worker-a']);
    expect(by(duplicate.request.requestId)).toEqual(['worker-a']);
    expect(by(mine.request.requestId)).toEqual(['worker-b']);
    expect(by(rerouted.request.requestId)).toEqual(['worker-b']);
    // The narrow row keeps the reason and incident id (columns of their own in the statement).
    const narrow = await pool.query('SELECT reason, incident_id FROM arbiter.duplicates WHERE request_id = $1', [mine.request.requestId]);
    expect(narrow.rows).toEqual([{ reason: 'not ready', incident_id: 'inc-1' }]);
  });
});
