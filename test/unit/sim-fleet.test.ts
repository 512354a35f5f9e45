import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  deploymentArn,
  Fleet,
  generateFleetSpec,
  nodeArn,
  parseFleetSpec,
  podArn,
  startSimServer,
  type ActionRequest,
  type FleetSpecInput,
  type ViolationKind,
} from '../../tools/fleet/index.ts';
import { FleetClient } from '../../tools/race-lab/fleet-client.ts';

// 0.01: restart 3 ms, drain 4 ms, replacement 15 ms, restart settle 10 ms.
const SCALE = 0.01;
const API = deploymentArn('payments', 'api');
const apiPod = (i: number) => podArn(API, 'api', i);
const NODE = nodeArn('node-1');

let fleets: Fleet[] = [];
afterEach(() => {
  for (const fleet of fleets) fleet.close();
  fleets = [];
});

function makeFleet(spec: FleetSpecInput = {}, random?: () => number): Fleet {
  const fleet = new Fleet(parseFleetSpec(spec), { latencyScale: SCALE, ...(random ? { random } : {}) });
  fleets.push(fleet);
  return fleet;
}

let seq = 0;
function req(arn: string, action: string, extra: Partial<ActionRequest> = {}): ActionRequest {
  seq += 1;
  return { requestId: `req-${seq}`, agentId: 'agent-a', arn, action, params: {}, ...extra };
}

async function waitFor(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not reached in time');
    await sleep(2);
  }
}

function counts(fleet: Fleet): Record<ViolationKind, number> {
  return fleet.violations().counts;
}

function totalViolations(fleet: Fleet): number {
  return Object.values(counts(fleet)).reduce((a, b) => a + b, 0);
}

describe('fleet model', () => {
  it('builds the default fleet and looks resources up by ARN', () => {
    const fleet = makeFleet();
    // 3 deployments + 10 pods + 4 nodes
    expect(fleet.size).toBe(17);
    const pod = fleet.observe(apiPod(3));
    expect(pod).toMatchObject({ exists: true, kind: 'pod', version: 1, workload: { arn: API, desired: 4, available: 4, minAvailable: 3 } });
    expect(fleet.observe(apiPod(4)).exists).toBe(false);
    expect(fleet.observe('arn:sim:k8s:local:000000000000:cluster/prod/node/nope')).toMatchObject({ exists: false, kind: 'unknown', version: 0 });
  });

  it('restart takes the pod out while it runs, then bumps its version and restart count', async () => {
    const fleet = makeFleet();
    const r = req(apiPod(0), 'restart');
    const running = fleet.execute(r);
    expect(fleet.observe(apiPod(0))).toMatchObject({ inProgressRequestIds: [r.requestId], state: { status: 'restarting', ready: false } });
    expect(fleet.observe(API).workload?.available).toBe(3);

    await expect(running).resolves.toEqual({ ok: true, version: 2, detail: expect.any(String) });
    const after = fleet.observe(apiPod(0));
    expect(after).toMatchObject({ version: 2, appliedRequestIds: [r.requestId], inProgressRequestIds: [], state: { ready: true, restarts: 1 } });
    // Versions are per resource: the deployment did not change.
    expect(fleet.observe(API).version).toBe(1);
  });

  it('hotfix, deploy, rollback and scale change the deployment and bump its version', async () => {
    const fleet = makeFleet();
    expect(await fleet.execute(req(API, 'hotfix', { params: { patch: 'fix-timeout' } }))).toMatchObject({ ok: true, version: 2 });
    expect(fleet.observe(API).state).toMatchObject({ revision: 'v1+hotfix.1', history: ['v1'], hotfixes: [{ patch: 'fix-timeout', version: 2 }] });

    expect(await fleet.execute(req(API, 'deploy', { params: { revision: 'v2' } }))).toMatchObject({ ok: true, version: 3 });
    expect(fleet.observe(API).state).toMatchObject({ revision: 'v2', history: ['v1', 'v1+hotfix.1'], hotfixes: [] });

    expect(await fleet.execute(req(API, 'rollback'))).toMatchObject({ ok: true, version: 4 });
    expect(fleet.observe(API).state).toMatchObject({ revision: 'v1+hotfix.1', history: ['v1'] });

    expect(await fleet.execute(req(API, 'scale', { params: { replicas: '6' } }))).toMatchObject({ ok: true, version: 5 });
    expect(fleet.observe(apiPod(5))).toMatchObject({ exists: true, state: { ready: true } });
    expect(fleet.observe(API).workload).toMatchObject({ desired: 6, available: 6 });

    expect(await fleet.execute(req(API, 'scale', { params: { replicas: '3' } }))).toMatchObject({ ok: true, version: 6 });
    expect(fleet.observe(apiPod(3)).exists).toBe(false);
    expect(fleet.observe(API).workload).toMatchObject({ desired: 3, available: 3 });
    expect(fleet.size).toBe(16);
  });

  it('rollback needs a previous revision', async () => {
    const fleet = makeFleet();
    expect(await fleet.execute(req(API, 'rollback'))).toMatchObject({ ok: false, code: 'NO_PREVIOUS_REVISION', version: 1 });
    expect(fleet.stats()).toMatchObject({ total: 0, rejected: 1 });
  });

  it('refuses actions that do not fit the resource or lack params, and unknown resources', async () => {
    const fleet = makeFleet();
    expect(await fleet.execute(req(API, 'restart'))).toMatchObject({ ok: false, code: 'INVALID_ACTION' });
    expect(await fleet.execute(req(NODE, 'rollback'))).toMatchObject({ ok: false, code: 'INVALID_ACTION' });
    expect(await fleet.execute(req(apiPod(0), 'reboot'))).toMatchObject({ ok: false, code: 'INVALID_ACTION' });
    expect(await fleet.execute(req(API, 'hotfix'))).toMatchObject({ ok: false, code: 'INVALID_PARAMS' });
    expect(await fleet.execute(req(API, 'deploy'))).toMatchObject({ ok: false, code: 'INVALID_PARAMS' });
    expect(await fleet.execute(req(API, 'scale', { params: { replicas: '-1' } }))).toMatchObject({ ok: false, code: 'INVALID_PARAMS' });
    expect(await fleet.execute(req(apiPod(9), 'restart'))).toMatchObject({ ok: false, code: 'NOT_FOUND' });
  });

  it('drain of a pod removes capacity until its replacement is ready, with a new uid', async () => {
    const fleet = makeFleet();
    const before = fleet.observe(apiPod(1)).state;
    expect(await fleet.execute(req(apiPod(1), 'drain'))).toMatchObject({ ok: true, version: 2 });
    expect(fleet.observe(apiPod(1)).state).toMatchObject({ status: 'replacing', ready: false });
    expect(fleet.observe(API).workload?.available).toBe(3);

    await waitFor(() => fleet.observe(API).workload?.available === 4);
    const after = fleet.observe(apiPod(1));
    expect(after.state).toMatchObject({ status: 'ready', generation: 2, drains: 1 });
    expect(after.state.uid).not.toBe(before.uid);
    expect(after.arn).toBe(apiPod(1));
  });

  it('drain then terminate of a node', async () => {
    const fleet = makeFleet();
    const drain = fleet.execute(req(NODE, 'drain'));
    expect(fleet.observe(NODE).state).toMatchObject({ status: 'draining', cordoned: true });
    expect(await drain).toMatchObject({ ok: true, version: 2 });
    expect(fleet.observe(NODE).state).toMatchObject({ status: 'drained' });
    expect(await fleet.execute(req(NODE, 'terminate'))).toMatchObject({ ok: true, version: 3 });
    expect(fleet.observe(NODE).state).toMatchObject({ status: 'terminated' });
    expect(await fleet.execute(req(NODE, 'drain'))).toMatchObject({ ok: false, code: 'NODE_TERMINATED' });
  });

  it('injected failures take the latency, change nothing and keep the version', async () => {
    const fleet = makeFleet({ failureRate: { restart: 1 } });
    const r = req(apiPod(0), 'restart');
    const running = fleet.execute(r);
    // Doomed actions do not even take the pod out while they run.
    expect(fleet.observe(API).workload?.available).toBe(4);
    expect(fleet.observe(apiPod(0)).inProgressRequestIds).toEqual([r.requestId]);
    expect(await running).toMatchObject({ ok: false, code: 'INJECTED_FAILURE', version: 1 });
    expect(fleet.observe(apiPod(0))).toMatchObject({ version: 1, appliedRequestIds: [], state: { restarts: 0 } });
    expect(fleet.stats()).toMatchObject({ executions: { restart: 1 }, failed: { restart: 1 }, completed: {}, total: 1 });
  });

  it('keeps only the most recent applied requestIds', async () => {
    const fleet = makeFleet({ latencyMs: { scale: 0 } });
    for (let i = 0; i < 60; i++) await fleet.execute(req(API, 'scale', { params: { replicas: '4' } }));
    const applied = fleet.observe(API).appliedRequestIds;
    expect(applied).toHaveLength(50);
    expect(fleet.observe(API).version).toBe(61);
    expect(applied.at(-1)).toBe(`req-${seq}`);
  });
});

describe('fencing', () => {
  it('refuses a token lower than the highest seen for the resource and records it', async () => {
    const fleet = makeFleet();
    expect(await fleet.execute(req(apiPod(0), 'restart', { fencingToken: 7 }))).toMatchObject({ ok: true });
    const stale = req(apiPod(0), 'restart', { fencingToken: 6, agentId: 'zombie-worker' });
    expect(await fleet.execute(stale)).toMatchObject({ ok: false, code: 'FENCED', highestToken: 7, version: 2 });
    expect(fleet.fenced()).toEqual([
      expect.objectContaining({ arn: apiPod(0), requestId: stale.requestId, agentId: 'zombie-worker', fencingToken: 6, highestToken: 7 }),
    ]);
    expect(fleet.observe(apiPod(0)).version).toBe(2);

    await sleep(20); // past the restart settle time
    // Equal tokens (same lock holder) and token-less callers (no Arbiter) are accepted.
    expect(await fleet.execute(req(apiPod(0), 'restart', { fencingToken: 7 }))).toMatchObject({ ok: true });
    await sleep(20);
    expect(await fleet.execute(req(apiPod(0), 'restart'))).toMatchObject({ ok: true });
    // Tokens are per resource.
    expect(await fleet.execute(req(apiPod(1), 'restart', { fencingToken: 1 }))).toMatchObject({ ok: true });
    expect(fleet.stats().fenced).toBe(1);
  });
});

describe('violations', () => {
  it('overlapping_restart: two concurrent restarts of one pod', async () => {
    const fleet = makeFleet();
    const a = req(apiPod(0), 'restart', { agentId: 'agent-a' });
    const b = req(apiPod(0), 'restart', { agentId: 'agent-b' });
    await Promise.all([fleet.execute(a), fleet.execute(b)]);
    const { violations } = fleet.violations();
    expect(counts(fleet).overlapping_restart).toBe(1);
    expect(violations[0]).toMatchObject({ kind: 'overlapping_restart', arn: apiPod(0), requestIds: [a.requestId, b.requestId], agentIds: ['agent-a', 'agent-b'] });
  });

  it('overlapping_restart: a restart landing on a pod still settling from the previous one', async () => {
    const fleet = makeFleet({ restartSettleMs: 100_000 }); // 1 s at this scale
    await fleet.execute(req(apiPod(0), 'restart', { agentId: 'agent-a' }));
    await fleet.execute(req(apiPod(0), 'restart', { agentId: 'agent-b' }));
    expect(counts(fleet).overlapping_restart).toBe(1);
  });

  it('no overlapping_restart when restarts are spaced beyond the settle time', async () => {
    const fleet = makeFleet();
    await fleet.execute(req(apiPod(0), 'restart'));
    await sleep(30);
    await fleet.execute(req(apiPod(0), 'restart'));
    expect(totalViolations(fleet)).toBe(0);
  });

  it('lost_hotfix: a rollback based on a version older than another agent’s hotfix', async () => {
    const fleet = makeFleet();
    await fleet.execute(req(API, 'deploy', { params: { revision: 'v2' } }));
    const observed = fleet.observe(API).version; // 2: what the rolling-back agent saw
    const fix = req(API, 'hotfix', { agentId: 'agent-hotfix', params: { patch: 'fix-leak' } });
    await fleet.execute(fix);
    const rollback = req(API, 'rollback', { agentId: 'agent-rollback', params: { expectedVersion: String(observed) } });
    await fleet.execute(rollback);
    expect(counts(fleet).lost_hotfix).toBe(1);
    expect(fleet.violations().violations[0]).toMatchObject({
      kind: 'lost_hotfix',
      arn: API,
      requestIds: [fix.requestId, rollback.requestId],
      agentIds: ['agent-hotfix', 'agent-rollback'],
    });
  });

  it('no lost_hotfix when the rollback was based on the version that includes the hotfix', async () => {
    const fleet = makeFleet();
    await fleet.execute(req(API, 'hotfix', { agentId: 'agent-hotfix', params: { patch: 'fix-leak' } }));
    const seen = fleet.observe(API).version;
    await fleet.execute(req(API, 'rollback', { agentId: 'agent-rollback', params: { basedOnVersion: String(seen) } }));
    // Rolling back one's own hotfix is never lost either.
    await fleet.execute(req(API, 'hotfix', { agentId: 'agent-a', params: { patch: 'mine' } }));
    await fleet.execute(req(API, 'rollback', { agentId: 'agent-a' }));
    expect(totalViolations(fleet)).toBe(0);
  });

  it('lost_hotfix without a base version: a deploy erasing a fresh hotfix by another agent', async () => {
    const fleet = makeFleet();
    await fleet.execute(req(API, 'hotfix', { agentId: 'agent-hotfix', params: { patch: 'fix-leak' } }));
    await fleet.execute(req(API, 'deploy', { agentId: 'agent-deploy', params: { revision: 'v3' } }));
    expect(counts(fleet).lost_hotfix).toBe(1);
  });

  it('below_min_available: draining every replica at once, one violation per dip with the lowest point', async () => {
    const fleet = makeFleet();
    await Promise.all([0, 1, 2, 3].map((i) => fleet.execute(req(apiPod(i), 'drain', { agentId: `agent-${i}` }))));
    const { violations } = fleet.violations();
    expect(counts(fleet).below_min_available).toBe(1);
    expect(violations[0]).toMatchObject({ kind: 'below_min_available', arn: API });
    expect(violations[0]?.detail).toContain('fell to 0 of 4');
    expect(violations[0]?.agentIds.sort()).toEqual(['agent-0', 'agent-1', 'agent-2', 'agent-3']);

    await waitFor(() => fleet.observe(API).workload?.available === 4);
    // A new dip is a new violation.
    await Promise.all([0, 1].map((i) => fleet.execute(req(apiPod(i), 'restart'))));
    expect(counts(fleet).below_min_available).toBe(2);
  });

  it('no below_min_available when drains go one at a time, each waiting for its replacement', async () => {
    const fleet = makeFleet();
    for (const i of [0, 1, 2, 3]) {
      expect(await fleet.execute(req(apiPod(i), 'drain'))).toMatchObject({ ok: true });
      await waitFor(() => fleet.observe(API).workload?.available === 4);
    }
    expect(totalViolations(fleet)).toBe(0);
  });

  it('terminate_before_drain: terminate of an undrained node, or while its drain runs', async () => {
    const fleet = makeFleet();
    await fleet.execute(req(NODE, 'terminate'));
    const node2 = nodeArn('node-2');
    const drain = req(node2, 'drain', { agentId: 'agent-drain' });
    const terminate = req(node2, 'terminate', { agentId: 'agent-terminate' });
    await Promise.all([fleet.execute(drain), fleet.execute(terminate)]);
    expect(counts(fleet).terminate_before_drain).toBe(2);
    // The default fleet has pods on those nodes: their capacity dips are recorded too.
    expect(fleet.violations().violations.filter((v) => v.kind === 'terminate_before_drain')[1]).toMatchObject({
      arn: node2,
      requestIds: [drain.requestId, terminate.requestId],
      agentIds: ['agent-drain', 'agent-terminate'],
    });
  });

  it('no terminate_before_drain when the drain completes first', async () => {
    const fleet = makeFleet();
    await fleet.execute(req(NODE, 'drain'));
    await fleet.execute(req(NODE, 'terminate'));
    expect(totalViolations(fleet)).toBe(0);
  });

  it('concurrent_conflicting_changes: a rollback and a hotfix running at once', async () => {
    const fleet = makeFleet();
    await fleet.execute(req(API, 'deploy', { params: { revision: 'v2' } }));
    await Promise.all([
      fleet.execute(req(API, 'rollback', { agentId: 'agent-rollback' })),
      fleet.execute(req(API, 'hotfix', { agentId: 'agent-hotfix', params: { patch: 'p' } })),
    ]);
    expect(counts(fleet).concurrent_conflicting_changes).toBe(1);
    // Scale does not touch the revision: no conflict with it.
    await Promise.all([fleet.execute(req(API, 'scale', { params: { replicas: '5' } })), fleet.execute(req(API, 'deploy', { params: { revision: 'v4' } }))]);
    expect(counts(fleet).concurrent_conflicting_changes).toBe(1);
  });

  it('duplicate_execution: the same requestId executed twice', async () => {
    const fleet = makeFleet();
    const r = req(API, 'scale', { params: { replicas: '4' } });
    await fleet.execute(r);
    await fleet.execute(r);
    expect(counts(fleet).duplicate_execution).toBe(1);
  });

  it('reset clears violations, stats, fencing memory and state', async () => {
    const fleet = makeFleet();
    await fleet.execute(req(NODE, 'terminate', { fencingToken: 9 }));
    fleet.reset();
    expect(totalViolations(fleet)).toBe(0);
    expect(fleet.stats().total).toBe(0);
    expect(fleet.observe(NODE)).toMatchObject({ version: 1, state: { status: 'ready' } });
    expect(await fleet.execute(req(NODE, 'drain', { fencingToken: 1 }))).toMatchObject({ ok: true });
  });
});

describe('fleet spec', () => {
  it('generates big fleets: every deployment with its pods, every node, all addressable by ARN', async () => {
    const spec = generateFleetSpec({ deployments: 1_000, replicas: 9, nodes: 200 });
    const fleet = new Fleet(spec, { latencyScale: 0 });
    fleets.push(fleet);
    expect(fleet.size).toBe(1_000 * 10 + 200);
    // The first and the last generated names both resolve: padding and numbering agree with the ARNs.
    for (const name of ['svc-0000', 'svc-0999']) {
      const deployment = deploymentArn('bench', name);
      expect(fleet.observe(podArn(deployment, name, 8))).toMatchObject({ exists: true, kind: 'pod', workload: { arn: deployment, desired: 9, available: 9, minAvailable: 8 } });
      expect(fleet.observe(podArn(deployment, name, 9)).exists).toBe(false);
    }
    expect(fleet.observe(deploymentArn('bench', 'svc-1000')).exists).toBe(false);
    expect(await fleet.execute(req(nodeArn('node-0200'), 'drain'))).toMatchObject({ ok: true });
    expect(fleet.observe(nodeArn('node-0200')).state).toMatchObject({ status: 'drained' });
    expect(fleet.observe(nodeArn('node-0201')).exists).toBe(false);
    // Paging through one kind: the total counts all of them, the page is the requested slice.
    const page = fleet.list({ kind: 'node', limit: 5, offset: 195 });
    expect(page.total).toBe(200);
    expect(page.resources.map((r) => [r.kind, r.arn])).toEqual(['0196', '0197', '0198', '0199', '0200'].map((n) => ['node', nodeArn(`node-${n}`)]));
  });

  it('a lookup by ARN costs about the same in a fleet 100× larger (no scan of the fleet)', () => {
    const small = new Fleet(generateFleetSpec({ deployments: 10, replicas: 9, nodes: 2 }), { latencyScale: 0 });
    const large = new Fleet(generateFleetSpec({ deployments: 1_000, replicas: 9, nodes: 200 }), { latencyScale: 0 });
    fleets.push(small, large);
    expect(large.size).toBe(100 * small.size);
    // The same number of ARNs from each, spread evenly over the fleet's own order, so a scan would
    // have to walk half of the fleet on average to reach them.
    const spread = (fleet: Fleet, count: number) => {
      const arns = fleet.list().resources.map((r) => r.arn);
      return Array.from({ length: count }, (_, i) => arns[Math.floor((i * arns.length) / count)]!);
    };
    const smallArns = spread(small, 100);
    const largeArns = spread(large, 100);
    const timeLookups = (fleet: Fleet, arns: string[]) => {
      const started = performance.now();
      for (let i = 0; i < 1_000; i++) fleet.observe(arns[i % arns.length]!);
      return performance.now() - started;
    };
    // A ratio measured in this run, not an absolute time: the machine's speed cancels out. Rounds
    // alternate between the fleets and each keeps its fastest, so JIT warm-up, GC pauses and other
    // processes on the machine inflate neither side. Measured here: about 2–2.5 with the map
    // lookup, about 27 with a linear scan of the same fleets; 8 leaves room both ways.
    let smallMs = Infinity;
    let largeMs = Infinity;
    for (let round = 0; round < 15; round++) {
      smallMs = Math.min(smallMs, timeLookups(small, smallArns));
      largeMs = Math.min(largeMs, timeLookups(large, largeArns));
    }
    expect(largeMs / smallMs, `1,000 lookups: ${largeMs.toFixed(2)} ms in the large fleet, ${smallMs.toFixed(2)} ms in the small one`).toBeLessThan(8);
  });

  it('lists every problem of an invalid spec at once', () => {
    let message = '';
    try {
      parseFleetSpec({
        deployments: [
          { namespace: 'a', name: 'x', replicas: 2, minAvailable: 3, revision: 'v1' },
          { namespace: 'a', name: 'x', replicas: 2, minAvailable: 1, revision: 'v1' },
        ],
        failureRate: { restart: 2 },
        latencyMs: { reboot: 1 },
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('deployments.0.minAvailable: minAvailable must not exceed replicas');
    expect(message).toContain('deployments.1: duplicate deployment a/x');
    expect(message).toContain('failureRate.restart');
    expect(message).toContain('latencyMs: Unrecognized key: "reboot"');
  });
});

describe('nodes: placement', () => {
  const state = (fleet: Fleet, arn: string) => fleet.observe(arn).state;
  const nodeOf = (fleet: Fleet, arn: string) => state(fleet, arn).node;

  it('spreads each deployment round-robin over every node, from an offset per deployment', () => {
    const fleet = makeFleet();
    // Deployment d, replica i → node (d + i) % 4: api is d 0, worker 1, web 2.
    expect([0, 1, 2, 3].map((i) => nodeOf(fleet, apiPod(i)))).toEqual(['node-1', 'node-2', 'node-3', 'node-4']);
    const worker = deploymentArn('payments', 'worker');
    expect([0, 1, 2].map((i) => nodeOf(fleet, podArn(worker, 'worker', i)))).toEqual(['node-2', 'node-3', 'node-4']);
    const web = deploymentArn('checkout', 'web');
    expect([0, 1, 2].map((i) => nodeOf(fleet, podArn(web, 'web', i)))).toEqual(['node-3', 'node-4', 'node-1']);
    expect(state(fleet, NODE)).toEqual({ name: 'node-1', status: 'ready', cordoned: false, pods: [apiPod(0), podArn(web, 'web', 2)], drainsRunning: 0 });
  });

  it('pins a deployment to the nodes its spec names; a node nobody is pinned to stays empty', () => {
    const fleet = makeFleet({
      nodes: [{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }],
      deployments: [{ namespace: 'ns', name: 'app', replicas: 3, minAvailable: 1, revision: 'v1', nodes: ['n2', 'n3'] }],
    });
    const app = deploymentArn('ns', 'app');
    expect([0, 1, 2].map((i) => nodeOf(fleet, podArn(app, 'app', i)))).toEqual(['n2', 'n3', 'n2']);
    expect(state(fleet, nodeArn('n1')).pods).toEqual([]);
    expect(state(fleet, nodeArn('n2')).pods).toEqual([podArn(app, 'app', 0), podArn(app, 'app', 2)]);
  });

  it('refuses a spec pinning a deployment to a node it does not have (the default nodes count)', () => {
    const deployment = { namespace: 'ns', name: 'app', replicas: 1, minAvailable: 0, revision: 'v1' };
    expect(() => parseFleetSpec({ nodes: [{ name: 'n1' }], deployments: [{ ...deployment, nodes: ['n1', 'nope'] }] })).toThrow(
      'deployments.0.nodes.1: unknown node nope',
    );
    expect(() => parseFleetSpec({ deployments: [{ ...deployment, nodes: [] }] })).toThrow('deployments.0.nodes');
    expect(parseFleetSpec({ deployments: [{ ...deployment, nodes: ['node-4'] }] }).deployments[0]?.nodes).toEqual(['node-4']);
  });

  it('a fleet without nodes runs pods on no node, and still evicts and replaces them', async () => {
    const fleet = makeFleet({ nodes: [] });
    const before = state(fleet, apiPod(0));
    expect(before.node).toBeNull();
    expect(await fleet.execute(req(apiPod(0), 'evict'))).toMatchObject({ ok: true });
    await waitFor(() => fleet.observe(API).workload?.available === 4);
    expect(state(fleet, apiPod(0))).toMatchObject({ node: null, generation: 2, ready: true });
    expect(state(fleet, apiPod(0)).uid).not.toBe(before.uid);
  });

  it('places a generated fleet in one pass, spread by deployment offset', () => {
    const fleet = new Fleet(generateFleetSpec({ deployments: 1_000, replicas: 9, nodes: 200 }), { latencyScale: 0 });
    fleets.push(fleet);
    const last = deploymentArn('bench', 'svc-0999');
    expect(fleet.observe(podArn(deploymentArn('bench', 'svc-0000'), 'svc-0000', 0)).state.node).toBe('node-0001');
    // (999 + 8) % 200 = 7 → the eighth node.
    expect(fleet.observe(podArn(last, 'svc-0999', 8)).state.node).toBe('node-0008');
    // 9,000 pods over 200 nodes: 45 each.
    expect(fleet.list({ kind: 'node' }).resources.every((n) => (n.state.pods as string[]).length === 45)).toBe(true);
  });

  it('scale-up puts new pods on the least-loaded ready node', async () => {
    const fleet = makeFleet({ nodes: [{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }] });
    // Default fleet over 3 nodes: n1 holds 4 pods, n2 3, n3 3. n2 is cordoned, so n3 takes the first.
    await fleet.execute(req(nodeArn('n2'), 'cordon'));
    await fleet.execute(req(API, 'scale', { params: { replicas: '6' } }));
    expect([4, 5].map((i) => nodeOf(fleet, apiPod(i)))).toEqual(['n3', 'n1']);
    // Scaled away, a pod leaves its node.
    await fleet.execute(req(API, 'scale', { params: { replicas: '4' } }));
    expect(state(fleet, nodeArn('n3')).pods).not.toContain(apiPod(4));
  });
});

describe('nodes: cordon, evict, drain, terminate', () => {
  const TWO_NODES: FleetSpecInput = {
    nodes: [{ name: 'n1' }, { name: 'n2' }],
    deployments: [{ namespace: 'ns', name: 'spread', replicas: 4, minAvailable: 3, revision: 'v1' }],
  };
  const SPREAD = deploymentArn('ns', 'spread');
  const spreadPod = (i: number) => podArn(SPREAD, 'spread', i);
  const N1 = nodeArn('n1');
  const N2 = nodeArn('n2');

  it('cordon: the node takes no new pods, keeps its own; idempotent; refused once terminated', async () => {
    const fleet = makeFleet(TWO_NODES);
    const cordon = fleet.execute(req(N1, 'cordon'));
    expect(fleet.observe(N1).state).toMatchObject({ status: 'cordoned', cordoned: true, pods: [spreadPod(0), spreadPod(2)] });
    expect(await cordon).toMatchObject({ ok: true, version: 2 });
    expect(await fleet.execute(req(N1, 'cordon'))).toMatchObject({ ok: true });
    expect(fleet.observe(N1).state.status).toBe('cordoned');
    expect(fleet.observe(SPREAD).workload?.available).toBe(4);

    await fleet.execute(req(N2, 'drain'));
    expect(await fleet.execute(req(N2, 'cordon'))).toMatchObject({ ok: true });
    expect(fleet.observe(N2).state.status).toBe('drained');
    await fleet.execute(req(N2, 'terminate'));
    expect(await fleet.execute(req(N2, 'cordon'))).toMatchObject({ ok: false, code: 'NODE_TERMINATED' });
  });

  it('evict: unready at once, off its node when done, replaced on another node with a new uid', async () => {
    const fleet = makeFleet({ ...TWO_NODES, nodes: [{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }] });
    // 4 pods over 3 nodes: n1 holds spread-0 and spread-3, n2 and n3 one each (a tie goes to the first).
    const before = fleet.observe(spreadPod(0)).state;
    expect(before.node).toBe('n1');
    const evict = fleet.execute(req(spreadPod(0), 'evict'));
    expect(fleet.observe(spreadPod(0)).state).toMatchObject({ status: 'evicting', ready: false, node: 'n1' });
    expect(fleet.observe(SPREAD).workload?.available).toBe(3);
    expect(await evict).toMatchObject({ ok: true, version: 2 });
    expect(fleet.observe(spreadPod(0)).state).toMatchObject({ status: 'replacing', ready: false, node: null });
    expect(fleet.observe(N1).state.pods).toEqual([spreadPod(3)]);

    await waitFor(() => fleet.observe(spreadPod(0)).state.ready === true);
    const after = fleet.observe(spreadPod(0)).state;
    expect(after).toMatchObject({ node: 'n2', generation: 2 });
    expect(after.uid).not.toBe(before.uid);
    expect(fleet.observe(N2).state.pods).toEqual([spreadPod(1), spreadPod(0)]);
    expect(totalViolations(fleet)).toBe(0);
  });

  it('evict: two at once take the workload below its minimum; a removed pod is RESOURCE_REMOVED', async () => {
    const fleet = makeFleet(TWO_NODES);
    const a = req(spreadPod(0), 'evict', { agentId: 'evict-a' });
    const b = req(spreadPod(1), 'evict', { agentId: 'evict-b' });
    await Promise.all([fleet.execute(a), fleet.execute(b)]);
    expect(counts(fleet).below_min_available).toBe(1);
    const [dip] = fleet.violations().violations;
    expect(dip).toMatchObject({ arn: SPREAD, detail: expect.stringContaining('fell to 2 of 4') });
    expect([dip!.requestIds.sort(), dip!.agentIds.sort()]).toEqual([[a.requestId, b.requestId].sort(), ['evict-a', 'evict-b']]);

    await fleet.execute(req(SPREAD, 'scale', { params: { replicas: '3' } }));
    expect(await fleet.execute(req(spreadPod(3), 'evict'))).toMatchObject({ ok: false, code: 'RESOURCE_REMOVED' });
  });

  it('evict: with no other node ready the pod stays pending, unready, retrying', async () => {
    const fleet = makeFleet({ ...TWO_NODES, deployments: [{ namespace: 'ns', name: 'spread', replicas: 2, minAvailable: 0, revision: 'v1' }] });
    await fleet.execute(req(N2, 'cordon'));
    // The node it leaves does not count, though it is ready.
    expect(await fleet.execute(req(spreadPod(0), 'evict'))).toMatchObject({ ok: true });
    await sleep(60); // 4 replace intervals at this scale
    expect(fleet.observe(spreadPod(0)).state).toMatchObject({ node: null, ready: false, status: 'replacing', generation: 1 });
    expect(fleet.observe(SPREAD).workload?.available).toBe(1);
  });

  it('drain: an uncoordinated node drain evicts every pod at once, below the minimum of a workload spread over 2 nodes', async () => {
    const fleet = makeFleet(TWO_NODES);
    const drain = req(N1, 'drain', { agentId: 'node-drainer' });
    const running = fleet.execute(drain);
    expect(fleet.observe(N1).state).toMatchObject({ status: 'draining', cordoned: true, drainsRunning: 1, pods: [spreadPod(0), spreadPod(2)] });
    expect(fleet.observe(SPREAD).workload?.available).toBe(2);
    expect(fleet.violations().violations).toEqual([
      expect.objectContaining({ kind: 'below_min_available', arn: SPREAD, requestIds: [drain.requestId], agentIds: ['node-drainer'] }),
    ]);

    expect(await running).toMatchObject({ ok: true, version: 2 });
    expect(fleet.observe(N1).state).toMatchObject({ status: 'drained', pods: [], drainsRunning: 0 });
    await waitFor(() => fleet.observe(SPREAD).workload?.available === 4);
    expect([0, 1, 2, 3].map((i) => fleet.observe(spreadPod(i)).state.node)).toEqual(['n2', 'n2', 'n2', 'n2']);
    // Drained, it is terminated without a violation.
    await fleet.execute(req(N1, 'terminate'));
    expect(counts(fleet)).toMatchObject({ below_min_available: 1, terminate_before_drain: 0 });
  });

  it('drain: a node without pods just ends drained (the last step of a drain done pod by pod)', async () => {
    const fleet = makeFleet(TWO_NODES);
    for (const i of [0, 2]) {
      await fleet.execute(req(spreadPod(i), 'evict'));
      await waitFor(() => fleet.observe(SPREAD).workload?.available === 4);
    }
    expect(fleet.observe(N1).state.pods).toEqual([]);
    expect(await fleet.execute(req(N1, 'drain'))).toMatchObject({ ok: true });
    expect(await fleet.execute(req(N1, 'terminate'))).toMatchObject({ ok: true });
    expect(totalViolations(fleet)).toBe(0);
  });

  it('terminate: pods on an undrained node go down at once and come back elsewhere; a terminated node takes none', async () => {
    const fleet = makeFleet({ ...TWO_NODES, nodes: [{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }] });
    const terminate = req(N1, 'terminate', { agentId: 'careless' });
    const running = fleet.execute(terminate);
    expect(fleet.observe(N1).state).toMatchObject({ status: 'terminating', pods: [] });
    expect(fleet.observe(spreadPod(0)).state).toMatchObject({ node: null, ready: false });
    expect(fleet.observe(SPREAD).workload?.available).toBe(2);
    expect(fleet.violations().violations.map((v) => [v.kind, v.arn, v.agentIds])).toEqual([
      ['terminate_before_drain', N1, ['careless']],
      ['below_min_available', SPREAD, ['careless']],
    ]);
    await running;
    await waitFor(() => fleet.observe(SPREAD).workload?.available === 4);
    expect([0, 3].map((i) => fleet.observe(spreadPod(i)).state.node)).toEqual(['n2', 'n3']);
    await fleet.execute(req(SPREAD, 'scale', { params: { replicas: '8' } }));
    expect(fleet.observe(N1).state.pods).toEqual([]);
  });
});

describe('execution log', () => {
  it('records each execution started, with its start, its end and how it ended; not refusals or fenced calls', async () => {
    const fleet = makeFleet({ failureRate: { terminate: 1 } });
    const restart = req(apiPod(0), 'restart', { agentId: 'restarter', fencingToken: 5 });
    const t0 = Date.now();
    const running = fleet.execute(restart);
    expect(fleet.executions()).toEqual([
      { requestId: restart.requestId, agentId: 'restarter', arn: apiPod(0), action: 'restart', startedAt: expect.any(Number), finishedAt: null, ok: null },
    ]);
    await running;
    await fleet.execute(req(apiPod(0), 'restart', { fencingToken: 4 })); // fenced
    await fleet.execute(req(API, 'rollback')); // refused: no previous revision
    const failed = req(NODE, 'terminate');
    await fleet.execute(failed);

    const log = fleet.executions();
    expect(log.map((e) => [e.requestId, e.ok])).toEqual([
      [restart.requestId, true],
      [failed.requestId, false],
    ]);
    const [first, second] = log;
    expect(first!.startedAt).toBeGreaterThanOrEqual(t0);
    expect(first!.finishedAt).toBeGreaterThanOrEqual(first!.startedAt + 2);
    expect(second!.startedAt).toBeGreaterThanOrEqual(first!.finishedAt!);
    expect(fleet.executions('/node/').map((e) => e.requestId)).toEqual([failed.requestId]);
    expect(fleet.executions(['/node/', '/pod/api-0']).length).toBe(2);
  });

  it('keeps the most recent ones, oldest first, when full', async () => {
    const { ExecutionLog } = await import('../../tools/fleet/executions.ts');
    const log = new ExecutionLog(3);
    for (let i = 1; i <= 5; i++) log.start({ requestId: `r${i}`, agentId: 'a', arn: `arn-${i}`, action: 'restart', startedAt: i });
    expect(log.list().map((e) => e.requestId)).toEqual(['r3', 'r4', 'r5']);
    expect(log.list(['arn-4']).map((e) => e.requestId)).toEqual(['r4']);
  });

  it('is served at GET /executions and read by the race lab fleet client, filtered by markers', async () => {
    const sim = await startSimServer({ port: 0, latencyScale: SCALE });
    try {
      const client = new FleetClient(sim.url);
      await client.act({ requestId: 'x-1', agentId: 'a', arn: apiPod(1), action: 'restart', params: {} });
      await client.act({ requestId: 'x-2', agentId: 'b', arn: NODE, action: 'cordon', params: {} });
      expect((await client.executions()).map((e) => e.requestId)).toEqual(['x-1', 'x-2']);
      expect(await client.executions('/node/')).toEqual([expect.objectContaining({ requestId: 'x-2', agentId: 'b', action: 'cordon', ok: true })]);
      expect((await client.executions(['/node/', '/pod/api-1'])).length).toBe(2);
      expect(await client.executions('nothing-like-this')).toEqual([]);
    } finally {
      await sim.close();
    }
  });
});

describe('the fleet server with a key: only signed calls change it; /reset only in lab mode', () => {
  const KEY = 'fleet-test-key-0123456789abcdef';
  const body = (requestId: string) => JSON.stringify({ requestId, agentId: 'a', arn: apiPod(0), action: 'restart', params: {} });

  it('an unsigned, wrongly signed or stale POST is 401 with a JSON error and changes nothing; a signed one runs', async () => {
    const { signedFetch, signRequest } = await import('../../src/executor/index.ts');
    const sim = await startSimServer({ port: 0, latencyScale: SCALE, hmacKey: KEY });
    try {
      const post = (path: string, text: string, headers: Record<string, string> = {}) =>
        fetch(`${sim.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text });
      const unsigned = await post('/actions', body('u-1'));
      expect(unsigned.status).toBe(401);
      expect(await unsigned.json()).toMatchObject({ ok: false, code: 'UNAUTHORIZED', detail: expect.stringMatching(/missing x-arbiter-/) });
      const wrongKey = await signedFetch('another-key-0123456789abcdef', `${sim.url}/actions`, { method: 'POST', body: body('u-2') });
      expect(wrongKey.status).toBe(401);
      expect(await wrongKey.json()).toMatchObject({ code: 'UNAUTHORIZED', detail: expect.stringMatching(/does not match/) });
      // Signed for another body: the signature covers the exact bytes.
      const swapped = await post('/actions', body('u-3'), signRequest({ key: KEY, method: 'POST', pathWithQuery: '/actions', body: body('u-other') }));
      expect(swapped.status).toBe(401);
      const stale = await post('/actions', body('u-4'), signRequest({ key: KEY, method: 'POST', pathWithQuery: '/actions', body: body('u-4'), now: Date.now() - 6 * 60_000 }));
      expect(stale.status).toBe(401);
      expect(await stale.json()).toMatchObject({ detail: expect.stringMatching(/outside ±300 s/) });
      const outOfBand = await post('/out-of-band', JSON.stringify({ arn: apiPod(0), action: 'restart' }));
      expect(outOfBand.status).toBe(401);
      expect(sim.fleet.stats().total).toBe(0);

      const signed = await signedFetch(KEY, `${sim.url}/actions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body('s-1') });
      expect(signed.status).toBe(200);
      expect(sim.fleet.observe(apiPod(0)).appliedRequestIds).toEqual(['s-1']);
      // Reads stay open.
      expect((await fetch(`${sim.url}/resources?arn=${encodeURIComponent(apiPod(0))}`)).status).toBe(200);
    } finally {
      await sim.close();
    }
  });

  it('POST /reset answers 403 outside lab mode, and resets in it', async () => {
    const closed = await startSimServer({ port: 0, latencyScale: SCALE });
    try {
      const refused = await fetch(`${closed.url}/reset`, { method: 'POST' });
      expect(refused.status).toBe(403);
      expect(await refused.json()).toMatchObject({ ok: false, code: 'LAB_ONLY' });
    } finally {
      await closed.close();
    }
    const lab = await startSimServer({ port: 0, latencyScale: SCALE, lab: true });
    try {
      expect((await fetch(`${lab.url}/reset`, { method: 'POST' })).status).toBe(200);
    } finally {
      await lab.close();
    }
  });

  it('binds loopback by default', async () => {
    const sim = await startSimServer({ port: 0 });
    try {
      expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await sim.close();
    }
  });
});
