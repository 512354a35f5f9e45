import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeArn, parseFleetSpec, startSimServer, type SimServer } from '../../tools/fleet/index.ts';
import { FleetClient, matchesMarker } from '../../tools/race-lab/fleet-client.ts';
import { runUncoordinated } from '../../tools/race-lab/run-uncoordinated.ts';
import { demoFleet, type Scenario, scenarios, type ScenarioScale } from '../../tools/race-lab/scenarios.ts';

// The CLI defaults (agents 24, resources 4), at the demo's own latencies: the schedules (atMs) are
// written against them.
const SCALE: ScenarioScale = { agents: 24, resources: 4, durationSec: 1 };
const byName = (name: string): Scenario => scenarios(SCALE).find((s) => s.name === name)!;

describe('race lab scenarios', () => {
  it('every intent of a scenario acts on resources its marker selects, and no scenario orders its agents', () => {
    for (const scenario of scenarios(SCALE)) {
      for (const intent of scenario.intents) expect(matchesMarker(intent.arn, scenario.marker), `${scenario.name}: ${intent.arn}`).toBe(true);
    }
    // Agents act independently: ordering a terminate after its drain is Arbiter's job (preconditions), not the scenario's.
    for (const name of ['drain-then-terminate', 'node-replacement']) expect(byName(name).intents.every((i) => i.after === undefined)).toBe(true);
  });

  it('node-replacement: lab workloads start one pod per lab node, the spares and other labs’ nodes hold none of them', () => {
    const sim = parseFleetSpec(demoFleet(SCALE));
    const nodeLab = sim.deployments.filter((d) => d.namespace === 'node-lab');
    expect(nodeLab.map((d) => [d.name, d.replicas, d.minAvailable, d.nodes])).toEqual([
      ['api', 4, 3, ['nr-node-1', 'nr-node-2', 'nr-node-3', 'nr-node-4']],
      ['worker', 3, 2, ['nr-node-1', 'nr-node-2', 'nr-node-3', 'nr-node-4']],
    ]);
    // Every other lab is pinned away from the nodes any scenario drains or terminates.
    for (const d of sim.deployments.filter((x) => x.namespace !== 'node-lab')) expect(d.nodes?.every((n) => n.startsWith('base-node-'))).toBe(true);
    const scenario = byName('node-replacement');
    const terminated = new Set(scenario.intents.filter((i) => i.action === 'terminate').map((i) => i.arn));
    expect(terminated).toEqual(new Set(['nr-node-1', 'nr-node-2', 'nr-node-3', 'nr-node-4'].map(nodeArn)));
    expect(scenario.intents.filter((i) => i.agentId === 'careless-bot')).toEqual([expect.objectContaining({ arn: nodeArn('nr-node-4'), action: 'terminate' })]);
    expect(scenario.intents.some((i) => i.action === 'restart') && scenario.intents.some((i) => i.action === 'drain' && i.arn.includes('/pod/'))).toBe(true);
  });
});

describe('race lab, uncoordinated, against an in-process fleet', () => {
  let sim: SimServer;
  let client: FleetClient;
  beforeAll(async () => {
    sim = await startSimServer({ port: 0, spec: parseFleetSpec(demoFleet(SCALE)) });
    client = new FleetClient(sim.url);
  });
  afterAll(() => sim.close());

  /** Violations on resources of no given scenario: a lab's races must not spill into another's. */
  const strays = (...names: string[]) => sim.fleet.violations().violations.filter((v) => !names.some((n) => matchesMarker(v.arn, byName(n).marker)));

  it('drain-then-terminate: the cleanup bot terminates nodes still draining', async () => {
    const result = await runUncoordinated(byName('drain-then-terminate'), client, () => {});
    expect(result.violations).toEqual({ terminate_before_drain: SCALE.resources });
    expect(strays('drain-then-terminate')).toEqual([]);
  });

  it('node-replacement: drains take both workloads below their minimum, terminates hit undrained nodes', async () => {
    const scenario = byName('node-replacement');
    const result = await runUncoordinated(scenario, client, () => {});
    expect(result.violations.below_min_available).toBeGreaterThanOrEqual(2);
    expect(result.violations.terminate_before_drain).toBeGreaterThanOrEqual(4);
    const violations = await client.violations(scenario.marker);
    expect(new Set(violations.filter((v) => v.kind === 'below_min_available').map((v) => v.arn.split('/').at(-1)))).toEqual(new Set(['api', 'worker']));
    expect(violations).toContainEqual(expect.objectContaining({ kind: 'terminate_before_drain', arn: nodeArn('nr-node-4'), agentIds: ['careless-bot'] }));
    expect(strays('drain-then-terminate', 'node-replacement')).toEqual([]);

    // Every intent the fleet accepted is in its execution log, once; nr-node-4's own drain and
    // terminate came too late (the node was already going away) and never started.
    const executions = await client.executions(scenario.marker);
    expect(new Set(executions.map((e) => e.requestId)).size).toBe(executions.length);
    expect(executions.length).toBe(scenario.intents.length - 2);
    expect(executions.filter((e) => e.arn === nodeArn('nr-node-4')).map((e) => e.agentId)).toEqual(['careless-bot']);

    // The evicted pods end up on the spares, never on another lab's nodes.
    await new Promise((r) => setTimeout(r, 2_500));
    const podsOn = (name: string) => (sim.fleet.observe(nodeArn(name)).state.pods as string[]).filter((p) => p.includes('/ns/node-lab/'));
    expect([...podsOn('nr-spare-1'), ...podsOn('nr-spare-2')].length).toBe(7);
  });
});
