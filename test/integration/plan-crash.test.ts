import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArbiterClient, PlanHandle } from '../../src/agent-sdk/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { eventually, startTestEnv, type TestEnv, type WorkerProcess } from '../support/harness.ts';

const JOBS = deploymentArn('batch', 'jobs');
const PLANS = 20;
const STEPS = 3;
// Restarts take a second: long enough to be killed in the middle of one, and a plan takes several.
const FLEET = {
  deployments: [{ namespace: 'batch', name: 'jobs', replicas: PLANS * STEPS, minAvailable: 0, revision: 'v1' }],
  nodes: [{ name: 'n1' }, { name: 'n2' }],
  latencyMs: { restart: 1_000 },
};
const CHAOS_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = (low: number, high: number) => low + Math.floor(Math.random() * (high - low));

describe('plans survive SIGKILL of the worker running a step and of the relay', () => {
  let env: TestEnv;
  let client: ArbiterClient;

  beforeAll(async () => {
    env = await startTestEnv({
      workers: 2,
      fleet: FLEET,
      latencyScale: 1,
      config: {
        // The relay runs apart, so it can be killed on its own.
        plans: { relay: false, pollMs: 100 },
        kafka: { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 1_000 },
        budget: { defaultMinAvailable: 0 },
        locks: { ttlMs: 4_000, retryMs: 200 },
        deferral: { recheckMs: 100 },
      },
    });
    await env.startRelay();
    client = await env.client('planner');
  }, 120_000);

  afterAll(async () => {
    await env?.stop();
  });

  it(`${PLANS} plans of ${STEPS} steps, workers and relay SIGKILLed at random points: every plan ends, no step twice, never out of order`, async () => {
    const handles: PlanHandle[] = [];
    const kills: string[] = [];
    const started = Date.now();
    const restarts: Array<Promise<unknown>> = [];

    // Chaos while the plans run: at random moments, SIGKILL the relay or a random worker (taking
    // turns), and start a new one in its place.
    const chaos = (async () => {
      for (let round = 0; Date.now() - started < CHAOS_MS; round++) {
        await sleep(between(300, 1_200));
        const pool: WorkerProcess[] = round % 2 === 0 ? env.relays : env.workers;
        const alive = pool.filter((p) => p.running());
        const victim = alive[between(0, alive.length)];
        if (!victim) continue;
        kills.push(`${round % 2 === 0 ? 'relay' : 'worker'} ${victim.id} at +${Date.now() - started} ms`);
        await victim.stop('SIGKILL');
        // A new worker is waited for (one worker is always running); a new relay is not, so the
        // next kill may well catch it starting up.
        if (round % 2 === 0) restarts.push(env.startRelay());
        else await env.startWorker();
      }
      await Promise.all(restarts);
    })();

    for (let p = 0; p < PLANS; p++) {
      const steps = Array.from({ length: STEPS }, (_, s) => ({ action: 'restart', resourceArn: podArn(JOBS, 'jobs', p * STEPS + s) }));
      handles.push(await client.plan(steps, { agentId: 'planner', reason: `plan ${p}` }).submit());
      await sleep(between(100, 500));
    }
    await chaos;

    // Every plan ends.
    const ended = await eventually(async () => {
      const { rows } = await env.db.query(`SELECT plan_id, status, detail FROM arbiter.plans WHERE plan_id = ANY($1::uuid[])`, [handles.map((h) => h.planId)]);
      return rows.length === PLANS && rows.every((r) => r.status !== 'RUNNING') && rows;
    }, 120_000, 'every plan to end');
    console.log(`kills: ${kills.join('; ')}`);
    expect(kills.some((k) => k.startsWith('worker'))).toBe(true);
    expect(kills.some((k) => k.startsWith('relay'))).toBe(true);
    expect(ended.filter((r) => r.status !== 'SUCCEEDED')).toEqual([]);

    // No step twice: the fleet saw each step's request start once, and recorded no duplicate execution.
    const log = env.sim.fleet.executions();
    const starts = new Map<string, number>();
    for (const e of log) starts.set(e.requestId, (starts.get(e.requestId) ?? 0) + 1);
    for (const h of handles) for (const id of h.requestIds) expect(starts.get(id), `step request ${id} of plan ${h.planId}`).toBe(1);
    expect(env.sim.fleet.violations().violations.filter((v) => v.kind === 'duplicate_execution')).toEqual([]);

    // Never out of order: each step started after the one before it had finished.
    for (const h of handles) {
      const runs = h.requestIds.map((id) => log.find((e) => e.requestId === id)!);
      for (let s = 1; s < STEPS; s++) expect(runs[s]!.startedAt, `plan ${h.planId} step ${s}`).toBeGreaterThanOrEqual(runs[s - 1]!.finishedAt!);
    }
    // And the plan's events say the same, in order, with no gap.
    const { rows: events } = await env.db.query(`SELECT plan_id, seq, type FROM arbiter.plan_events WHERE plan_id = ANY($1::uuid[]) ORDER BY plan_id, seq`, [handles.map((h) => h.planId)]);
    for (const h of handles) {
      const mine = events.filter((e) => e.plan_id === h.planId);
      expect(mine.map((e) => Number(e.seq))).toEqual(mine.map((_, i) => i + 1));
      expect(mine.at(-1)!.type).toBe('SUCCEEDED');
    }
  }, 240_000);
});
