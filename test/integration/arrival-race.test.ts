import { describe, expect, it } from 'vitest';
import { writeArrivals } from '../../src/audit/arrivals.ts';
import type { ArrivalRow } from '../../src/audit/rows.ts';
import { coalesceKey } from '../../src/coalesce/index.ts';
import { inFlightFollower } from '../../src/contract/decision.ts';
import { buildRequest } from '../../src/contract/request.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { migratedDatabase } from '../support/harness.ts';

/**
 * Two owners of one partition for a moment (a rebalance) can write the same records at once. The
 * arrival statement is written optimistically: a unique index meets the other owner's rows once
 * that owner commits, and the statement fails as a whole; written again with the check, the other
 * owner's ids come back as known (decided before), and nothing of the chunk is written, so the
 * worker decides it again without them. If the other owner is still writing during that checked
 * statement, its ids come back as 'taken' instead, and the worker applies only its own.
 */
describe('the arrival statement when another owner writes the same records at once', () => {
  const { pool } = migratedDatabase('arbiter_race', 4);
  const scope = deploymentArn('race', 'api');
  const arn = podArn(scope, 'api', 0);

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

  it('writes nothing over the other owner’s records: they come back as known, and the chunk without them is written', async () => {
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
      // ...then meets them: nothing of its chunk is written, and it learns what the other owner decided.
      const result = await second;
      expect(result.kind === 'known' && [...result.known.keys()].sort()).toEqual([primary, duplicate].map((r) => r.request.requestId).sort());
      expect(result.kind === 'known' && result.known.get(duplicate.request.requestId)!.request.agentId).toBe('agent-1');
      const again = await writeArrivals(pool, 'worker-b', { arrivals: [mine, rerouted], deadLetters: [] });
      expect(again.kind === 'written' && [...again.fresh]).toEqual([mine.request.requestId]);
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

  it('a redelivered chunk of duplicates alone fails the optimistic statement as a whole and comes back known', async () => {
    const primary = row(10, { status: 'ACCEPTED', rule: 'accept', notBefore: Date.now(), detail: 'accepted' });
    const stored = row(11, inFlightFollower(primary.request.requestId));
    const fresh = row(12, inFlightFollower(primary.request.requestId));
    expect((await writeArrivals(pool, 'worker-a', { arrivals: [primary, stored], deadLetters: [] })).kind).toBe('written');
    // The stored duplicate and a new one in one chunk: the duplicates' unique index refuses the
    // first, so nothing of the chunk is written, and the stored one comes back with its primary.
    const again = await writeArrivals(pool, 'worker-b', { arrivals: [stored, fresh], deadLetters: [] });
    expect(again.kind === 'known' && [...again.known.keys()]).toEqual([stored.request.requestId]);
    expect(again.kind === 'known' && again.known.get(stored.request.requestId)!.request.agentId).toBe('agent-11');
    const rows = await pool.query('SELECT request_id::text, worker_id FROM arbiter.duplicates WHERE request_id = ANY($1::uuid[])', [
      [stored, fresh].map((r) => r.request.requestId),
    ]);
    expect(rows.rows).toEqual([{ request_id: stored.request.requestId, worker_id: 'worker-a' }]);
    // Without it, the new duplicate is written once.
    const rest = await writeArrivals(pool, 'worker-b', { arrivals: [fresh], deadLetters: [] });
    expect(rest.kind === 'written' && [...rest.fresh]).toEqual([fresh.request.requestId]);
  });
});
