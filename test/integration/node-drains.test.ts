import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArbiterClient, RemediationOutcome } from '../../src/agent-sdk/index.ts';
import { deploymentArn, nodeArn } from '../../tools/fleet/index.ts';
import { startTestEnv, type TestEnv } from '../support/harness.ts';
import { sampleAvailable } from '../support/races.ts';

const A = deploymentArn('shop', 'a');
const B = deploymentArn('shop', 'b');
const SHARED = ['d1', 'd2', 'd3'];
const PAIRS = 20;
const PAIR_NODES = Array.from({ length: PAIRS }, (_, i) => `t${i + 1}`);

/**
 * a and b run one replica on each of d1..d3 (min available = replicas − 1); c runs one pod on each
 * of the t-nodes; two spare nodes take evicted pods.
 */
const FLEET = {
  deployments: [
    { namespace: 'shop', name: 'a', replicas: 3, minAvailable: 2, revision: 'v1', nodes: SHARED },
    { namespace: 'shop', name: 'b', replicas: 3, minAvailable: 2, revision: 'v1', nodes: SHARED },
    { namespace: 'batch', name: 'c', replicas: PAIRS, minAvailable: PAIRS / 2, revision: 'v1', nodes: PAIR_NODES },
  ],
  nodes: [...SHARED, ...PAIR_NODES, 's1', 's2'].map((name) => ({ name })),
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('node drains and terminates through Arbiter: preconditions and every workload’s budget, 2 workers', () => {
  let env: TestEnv;
  let agentA: ArbiterClient;
  let agentB: ArbiterClient;

  beforeAll(async () => {
    env = await startTestEnv({ workers: 2, fleet: FLEET, latencyScale: 0.2, config: { deferral: { recheckMs: 50, maxDeferMs: 120_000 }, plans: { pollMs: 50 } } });
    agentA = await env.client('node-operator');
    agentB = await env.client('cleanup-bot');
  }, 120_000);

  afterAll(async () => {
    await env?.stop();
  });

  it('3 nodes drained at once, each hosting replicas of the same two deployments: never below minimum, every eviction in its workload’s scope, all drains complete', async () => {
    const watchA = sampleAvailable(env.sim.fleet, A, 5);
    const watchB = sampleAvailable(env.sim.fleet, B, 5);
    const outcomes = await Promise.all(
      SHARED.map((n) => agentA.submitAndWait({ agentId: 'node-operator', resourceArn: nodeArn(n), action: 'drain' }, { timeoutMs: 90_000 })),
    );
    const lowA = watchA.stop();
    const lowB = watchB.stop();
    expect(outcomes.map((o) => o.status)).toEqual(['EXECUTED', 'EXECUTED', 'EXECUTED']);
    expect(lowA.samples).toBeGreaterThan(50);
    expect(lowA.lowest, 'a fell below its minimum').toBeGreaterThanOrEqual(2);
    expect(lowB.lowest, 'b fell below its minimum').toBeGreaterThanOrEqual(2);
    for (const n of SHARED) expect(env.sim.fleet.observe(nodeArn(n)).state).toMatchObject({ status: 'drained', pods: [] });

    // Six evictions, each decided in its workload's scope, and executed.
    const { rows } = await env.db.query(
      `SELECT r.resource_arn, r.scope, s.status FROM arbiter.requests r JOIN arbiter.request_state s USING (request_id)
        WHERE r.action = 'evict' ORDER BY r.resource_arn`,
    );
    // At least the six pods first seen on them; more when a replacement landed on a node not yet cordoned.
    expect(rows.length).toBeGreaterThanOrEqual(6);
    for (const r of rows) expect(r.scope).toBe(r.resource_arn.startsWith(`${A}/`) ? A : B);
    // Each of the six pods first on the nodes was evicted. (A second-round plan, made for a pod that
    // landed on a node before its cordon, may still be running once that node is empty: its
    // eviction then waits for the budget like any other.)
    const evicted = new Set(rows.filter((r) => r.status === 'EXECUTED').map((r) => r.resource_arn));
    expect(evicted.size).toBeGreaterThanOrEqual(6);
    expect(env.sim.fleet.violations().violations).toEqual([]);
  });

  it(`two agents, no plan, no dependsOn: drain and terminate of a node 50 ms apart, in either order, ${PAIRS} times: never terminate_before_drain`, async () => {
    const runs = await Promise.all(
      PAIR_NODES.map(async (n, i): Promise<{ node: string; drain: RemediationOutcome; terminate: RemediationOutcome; terminateFirst: boolean }> => {
        await sleep(i * 30);
        const terminateFirst = i % 2 === 1;
        const drain = () => agentA.submit({ agentId: 'node-operator', resourceArn: nodeArn(n), action: 'drain' });
        const terminate = () => agentB.submit({ agentId: 'cleanup-bot', resourceArn: nodeArn(n), action: 'terminate' });
        const [first, second] = terminateFirst ? [terminate, drain] : [drain, terminate];
        const a = await first();
        await sleep(50);
        const b = await second();
        const [oa, ob] = await Promise.all([agentA.awaitOutcome(a.requestId, { timeoutMs: 60_000 }), agentA.awaitOutcome(b.requestId, { timeoutMs: 60_000 })]).catch(async (error) => {
          const open = await env.db.query(`SELECT resource_arn, action, status, rule, detail FROM arbiter.request_state WHERE NOT final ORDER BY resource_arn`);
          const plans = await env.db.query(`SELECT plan_id, status, detail FROM arbiter.plans`);
          const steps = await env.db.query(`SELECT plan_id, step, action, resource_arn, status FROM arbiter.plan_steps WHERE status NOT IN ('EXECUTED')`);
          console.log(JSON.stringify({ node: n, open: open.rows, plans: plans.rows.filter((p) => p.status !== 'SUCCEEDED'), steps: steps.rows }, null, 1));
          throw error;
        });
        return terminateFirst ? { node: n, terminate: oa, drain: ob, terminateFirst } : { node: n, drain: oa, terminate: ob, terminateFirst };
      }),
    );
    const violations = env.sim.fleet.violations().violations;
    expect(violations.filter((v) => v.kind === 'terminate_before_drain')).toEqual([]);
    expect(violations).toEqual([]);
    const log = env.sim.fleet.executions();
    for (const run of runs) {
      expect(run.drain.status, `drain of ${run.node}`).toBe('EXECUTED');
      expect(run.terminate.status, `terminate of ${run.node}`).toBe('EXECUTED');
      const drained = log.find((e) => e.requestId === run.drain.requestId)!;
      const terminated = log.find((e) => e.requestId === run.terminate.requestId)!;
      expect(terminated.startedAt, `terminate of ${run.node} started before its drain finished`).toBeGreaterThanOrEqual(drained.finishedAt!);
    }
    // The terminates sent first waited on their precondition, and said so.
    const { rows } = await env.db.query(
      `SELECT count(DISTINCT request_id)::int AS n FROM arbiter.decisions WHERE status = 'DEFERRED' AND rule = 'precondition' AND request_id = ANY($1::uuid[])`,
      [runs.filter((r) => r.terminateFirst).map((r) => r.terminate.requestId)],
    );
    expect(rows[0].n).toBe(PAIRS / 2);
  });
});
