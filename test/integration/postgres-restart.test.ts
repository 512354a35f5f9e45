import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemediationOutcome } from '../../src/agent-sdk/index.ts';
import type { RemediationRequest } from '../../src/contract/request.ts';
import { eventually, type TestEnv } from '../support/harness.ts';
import { startStormEnv, type StormEnv } from '../support/storm.ts';
import { restartPostgres } from '../support/postgres-control.ts';

/**
 * PostgreSQL restarted in the middle of a storm over two workers: both keep running, every request
 * gets exactly one final outcome, nothing runs twice. The time to recover is measured.
 */

const TOTAL = 5_000;

describe('PostgreSQL restarted during a 5,000-request storm', () => {
  let storm: StormEnv;
  let env: TestEnv;

  beforeAll(async () => {
    // A short lease, so that if a worker did die the survivor would not wait 5 minutes for its locks.
    storm = await startStormEnv(20, { config: { deferral: { recheckMs: 100, maxDeferMs: 600_000 }, locks: { ttlMs: 5_000, reaperIntervalMs: 1_000 } } });
    env = storm.env;
  });
  afterAll(async () => storm?.stop());

  it('both workers survive; 0 requests without a final outcome; 0 executed twice', { timeout: 300_000 }, async () => {
    const requests: RemediationRequest[] = Array.from({ length: TOTAL }, (_, i) => storm.restart(i));
    const client = await env.client('storm-watcher');
    const answers = requests.map((r) => client.awaitOutcome(r.requestId, { timeoutMs: 240_000 }));
    const send = (batch: RemediationRequest[]) => storm.send(batch.map((request) => ({ key: scopeOf(request), request })));

    // Half the storm, then the restart while it is being worked off, then the other half.
    await send(requests.slice(0, TOTAL / 2));
    await eventually(async () => (await countFinal(env)) >= 200, 60_000, 'the storm under way');
    // /readyz of one worker, sampled every 100 ms from the restart on: 503 while PostgreSQL is away, 200 again after.
    const readiness: Array<{ at: number; ok: boolean }> = [];
    const probe = setInterval(() => {
      const at = Date.now();
      void fetch(`${env.workers[0]!.metricsUrl}/readyz`, { signal: AbortSignal.timeout(1_000) }).then(
        (r) => readiness.push({ at, ok: r.ok }),
        () => readiness.push({ at, ok: false }),
      );
    }, 100);
    const restartAt = Date.now();
    const restart = await restartPostgres();
    await send(requests.slice(TOTAL / 2));
    const progress = setInterval(() => {
      void countFinal(env).then((n) => console.log(`${Date.now() - restartAt} ms after the restart: ${n} final`), (e: Error) => console.log(e.message));
    }, 10_000);
    progress.unref();

    const firstAfter = await eventually(async () => {
      const { rows } = await env.db.query('SELECT min(decided_at) AS at FROM arbiter.decisions WHERE final AND decided_at > to_timestamp($1 / 1000.0)', [restartAt + restart.tookMs]);
      return rows[0]?.at as Date | undefined;
    }, 120_000, 'a decision after the restart');
    const outcomes: RemediationOutcome[] = await Promise.all(answers);
    clearInterval(progress);
    clearInterval(probe);
    const firstUnready = readiness.find((r) => !r.ok);
    const readyAgain = firstUnready && readiness.find((r) => r.ok && r.at > firstUnready.at);
    expect(firstUnready, '/readyz turned 503 while PostgreSQL was away').toBeDefined();
    expect(readyAgain, '/readyz 200 again once it was back').toBeDefined();
    console.log(`postgres restart: /readyz 503 from ${firstUnready!.at - restartAt} ms, 200 again at ${readyAgain!.at - restartAt} ms after the restart began`);
    console.log(
      `postgres restart: pg_ctlcluster took ${restart.tookMs} ms; first final decision ${firstAfter.getTime() - restartAt - restart.tookMs} ms after it was back; ` +
        `storm of ${TOTAL} done ${Date.now() - restartAt} ms after the restart began`,
    );

    expect(env.workers.map((w) => w.running())).toEqual([true, true]);
    for (const w of env.workers) expect(w.output()).not.toMatch(/Unhandled 'error' event|consumer crashed/);
    expect(outcomes.filter((o) => o.status !== 'EXECUTED').map((o) => `${o.status}: ${o.detail}`)).toEqual([]);
    const { rows } = await env.db.query('SELECT count(*)::int AS n, count(DISTINCT request_id)::int AS distinct_ids FROM arbiter.decisions WHERE final');
    expect(rows[0]).toEqual({ n: TOTAL, distinct_ids: TOTAL });
    expect(env.sim.fleet.stats().executions.restart).toBe(TOTAL);
    expect(env.sim.fleet.violations().counts.duplicate_execution).toBe(0);
  });
});

/** The deployment a storm pod belongs to: its scope, the record's key. */
function scopeOf(request: RemediationRequest): string {
  return request.resourceArn.slice(0, request.resourceArn.lastIndexOf('/pod/'));
}

async function countFinal(env: TestEnv): Promise<number> {
  const { rows } = await env.db.query('SELECT count(*)::int AS n FROM arbiter.decisions WHERE final');
  return rows[0].n;
}
