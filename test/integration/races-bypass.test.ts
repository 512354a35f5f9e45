import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RequestInput } from '../../src/agent-sdk/index.ts';
import { parseFleetSpec, startSimServer, type SimServer } from '../../tools/fleet/index.ts';
import {
  DRAIN_DEPLOYMENT,
  DRAIN_MIN_AVAILABLE,
  DRAIN_REPLICAS,
  RACE_FLEET,
  RESTART_POD,
  REVISION_DEPLOYMENT,
  drainPod,
  drainStorm,
  restartStorm,
  revisionStorm,
  sampleAvailable,
  violationCounts,
} from '../support/races.ts';

/**
 * The control experiment for races.test.ts: the very same storms, sent by the agents straight to the
 * infrastructure (the simulated fleet's HTTP API, no Arbiter, no fencing token), at the same latency
 * scale. The fleet must record the incoherent outcomes; if it did not, races.test.ts's "zero
 * violations" would prove nothing.
 */
describe('the seed races without Arbiter: the same storms straight to the fleet produce violations', () => {
  let sim: SimServer;

  beforeAll(async () => {
    sim = await startSimServer({ port: 0, spec: parseFleetSpec(RACE_FLEET), latencyScale: 0.2 });
  });
  afterAll(async () => {
    await sim?.close();
  });
  beforeEach(() => sim.fleet.reset());

  interface Direct {
    requestId: string;
    input: RequestInput;
    status: number;
    body: { ok: boolean; code?: string; version?: number };
  }

  /** Every agent POSTs its action to the fleet at once, as an agent acting on its own would. */
  async function storm(inputs: RequestInput[]): Promise<Direct[]> {
    return Promise.all(
      inputs.map(async (input) => {
        const requestId = randomUUID();
        const response = await fetch(`${sim.url}/actions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ requestId, agentId: input.agentId, arn: input.resourceArn, action: input.action, params: input.params ?? {} }),
        });
        return { requestId, input, status: response.status, body: (await response.json()) as Direct['body'] };
      }),
    );
  }

  it('25 agents restarting the same pod directly: 25 restarts, overlapping_restart recorded', async () => {
    const results = await storm(restartStorm(25));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(fleet().observe(RESTART_POD).state.restarts).toBe(25);
    const counts = violationCounts(fleet());
    expect(counts.overlapping_restart).toBeGreaterThan(0);
    const overlap = fleet().violations().violations.find((v) => v.kind === 'overlapping_restart')!;
    expect(overlap.arn).toBe(RESTART_POD);
    expect(overlap.agentIds.length).toBeGreaterThanOrEqual(2);
    console.log(`bypass restart storm: ${JSON.stringify(nonZero(counts))}`);
  });

  it('11 rollbacks and 11 hotfixes based on the same version, directly: lost_hotfix recorded', async () => {
    const release = await storm([{ agentId: 'release-bot', resourceArn: REVISION_DEPLOYMENT, action: 'deploy', params: { revision: 'v2' } }]);
    expect(release[0]!.status).toBe(200);
    const observed = fleet().observe(REVISION_DEPLOYMENT);
    expect(observed.version).toBe(2);

    const results = await storm(revisionStorm(22, observed.version));
    // Nothing stops them: many changes land, each based on a picture that was already out of date.
    const applied = results.filter((r) => r.status === 200);
    expect(applied.length).toBeGreaterThan(1);
    const counts = violationCounts(fleet());
    expect(counts.lost_hotfix).toBeGreaterThan(0);
    expect(counts.concurrent_conflicting_changes).toBeGreaterThan(0);
    const lost = fleet().violations().violations.find((v) => v.kind === 'lost_hotfix')!;
    expect(lost.arn).toBe(REVISION_DEPLOYMENT);
    expect(lost.detail).toMatch(/based on version 2\) removed hotfix/);
    console.log(`bypass revision storm: ${applied.length} of 22 applied; ${JSON.stringify(nonZero(counts))}`);
  });

  it('24 agents draining every replica directly: capacity falls below the minimum, below_min_available recorded', async () => {
    const sampler = sampleAvailable(fleet(), DRAIN_DEPLOYMENT);
    const results = await storm(drainStorm(24));
    const { lowest } = sampler.stop();
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(lowest).toBeLessThan(DRAIN_MIN_AVAILABLE);
    for (let i = 0; i < DRAIN_REPLICAS; i++) expect(fleet().observe(drainPod(i)).state.drains).toBe(24 / DRAIN_REPLICAS);
    const counts = violationCounts(fleet());
    expect(counts.below_min_available).toBeGreaterThan(0);
    const dip = fleet().violations().violations.find((v) => v.kind === 'below_min_available')!;
    expect(dip.arn).toBe(DRAIN_DEPLOYMENT);
    console.log(`bypass drain storm: lowest available ${lowest} of ${DRAIN_REPLICAS} (minimum ${DRAIN_MIN_AVAILABLE}); ${dip.detail}; ${JSON.stringify(nonZero(counts))}`);
  });

  function fleet() {
    return sim.fleet;
  }
});

function nonZero(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
}
