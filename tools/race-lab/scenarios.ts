import type { ActionName } from '../../src/index.ts';
import { deploymentArn, nodeArn, podArn, type FleetSpecInput } from '../fleet/index.ts';
import type { Marker } from './fleet-client.ts';

/** One thing one agent wants done. */
export interface Intent {
  agentId: string;
  arn: string;
  action: ActionName;
  params: Record<string, string>;
  /** The agent reads the resource's version when the scenario starts and bases its change on it, even if it acts later. */
  basedOnObservedVersion?: boolean;
  /** Index of an intent in the same list that must have executed first (a plan step). */
  after?: number;
  incidentId?: string;
  /** Milliseconds after the scenario starts at which the agent acts. */
  atMs?: number;
}

export interface Scenario {
  name: string;
  title: string;
  /** The race it stages; the fleet violation kinds it is expected to cause when agents are uncoordinated. */
  expectedViolations: string[];
  /** Resources belong to a scenario when their ARN contains this (or one of these). */
  marker: Marker;
  /** Puts the fleet in the starting state (applied directly to the fleet, before any agent acts). */
  setup?: Array<{ arn: string; action: ActionName; params: Record<string, string> }>;
  intents: Intent[];
}

export interface ScenarioScale {
  agents: number;
  /** Pods in the restart lab, nodes in the drain-then-terminate lab. */
  resources: number;
  /** Seconds the incident's duplicate storm lasts. */
  durationSec: number;
}

const NS = {
  restart: 'restart-lab',
  deploy: 'deploy-lab',
  drain: 'drain-lab',
  incident: 'incident-lab',
  nodes: 'node-lab',
};

/**
 * Every other lab's pods run on base nodes that no scenario drains or terminates: one lab's node
 * operations never move another lab's pods, nor count against its budget.
 */
const BASE_NODES = ['base-node-1', 'base-node-2', 'base-node-3'];
/** The node-replacement lab: its workloads start on these, which agents drain and terminate… */
const NR_NODES = ['nr-node-1', 'nr-node-2', 'nr-node-3', 'nr-node-4'];
/** …and these start empty, so evicted pods have somewhere to go once the lab nodes are cordoned. */
const NR_SPARES = ['nr-spare-1', 'nr-spare-2'];

/** A fleet with one namespace per scenario, so scenarios never touch each other's resources. */
export function demoFleet(scale: ScenarioScale, latencyScale = 1): FleetSpecInput {
  const ms = (v: number) => Math.round(v * latencyScale);
  return {
    deployments: [
      { namespace: NS.restart, name: 'api', replicas: scale.resources, minAvailable: Math.max(0, scale.resources - 1), revision: 'v1', nodes: BASE_NODES },
      { namespace: NS.deploy, name: 'web', replicas: 3, minAvailable: 2, revision: 'v1', nodes: BASE_NODES },
      { namespace: NS.drain, name: 'cache', replicas: 4, minAvailable: 3, revision: 'v1', nodes: BASE_NODES },
      { namespace: NS.incident, name: 'checkout', replicas: 4, minAvailable: 3, revision: 'v1', nodes: BASE_NODES },
      // One replica per node: draining any two lab nodes at once takes `api` below its minimum.
      { namespace: NS.nodes, name: 'api', replicas: 4, minAvailable: 3, revision: 'v1', nodes: NR_NODES },
      { namespace: NS.nodes, name: 'worker', replicas: 3, minAvailable: 2, revision: 'v1', nodes: NR_NODES },
    ],
    // Spares first: among equally loaded nodes the scheduler takes the first, so evicted pods fill
    // the spares before anything else. (Run without drain-then-terminate, whose lab nodes are then
    // still ready and empty, node-lab pods may also land there; no scenario touches them afterwards.)
    nodes: [...NR_SPARES, ...BASE_NODES, ...Array.from({ length: scale.resources }, (_, i) => `lab-node-${i + 1}`), ...NR_NODES].map((name) => ({ name })),
    latencyMs: {
      restart: ms(400),
      rollback: ms(400),
      hotfix: ms(400),
      deploy: ms(300),
      drain: ms(500),
      terminate: ms(300),
      replace: ms(1200),
      scale: ms(200),
      cordon: ms(50),
      evict: ms(400),
    },
    restartSettleMs: ms(1000),
  };
}

const agent = (role: string, i: number) => `${role}-${String(i + 1).padStart(2, '0')}`;

export function scenarios(scale: ScenarioScale): Scenario[] {
  const api = deploymentArn(NS.restart, 'api');
  const web = deploymentArn(NS.deploy, 'web');
  const cache = deploymentArn(NS.drain, 'cache');
  const checkout = deploymentArn(NS.incident, 'checkout');
  const n = scale.agents;

  const sameRestart: Intent[] = Array.from({ length: n }, (_, i) => ({
    agentId: agent('restart-bot', i),
    arn: podArn(api, 'api', 0),
    action: 'restart' as const,
    params: {},
  }));

  const half = Math.max(1, Math.floor(n / 2));
  const rollbackHotfix: Intent[] = Array.from({ length: n }, (_, i): Intent =>
    i < half
      ? // Rollback bots observed before the hotfixes landed, and act a moment later on that old picture.
        { agentId: agent('rollback-bot', i), arn: web, action: 'rollback' as const, params: {}, basedOnObservedVersion: true, atMs: 900 }
      : { agentId: agent('hotfix-bot', i - half), arn: web, action: 'hotfix' as const, params: { patch: `fix-${i - half + 1}` }, basedOnObservedVersion: true },
  );

  const drains: Intent[] = Array.from({ length: n }, (_, i) => ({
    agentId: agent('drain-bot', i),
    arn: podArn(cache, 'cache', i % 4),
    action: 'drain' as const,
    params: {},
  }));

  // An operator drains each node; a cleanup bot terminates it on its own schedule, 50 ms later,
  // with nothing linking the two: only Arbiter's precondition (drained first) can order them.
  const drainTerminate: Intent[] = [];
  for (let i = 0; i < scale.resources; i++) {
    const node = nodeArn(`lab-node-${i + 1}`);
    drainTerminate.push({ agentId: 'node-operator', arn: node, action: 'drain', params: {} });
    drainTerminate.push({ agentId: 'cleanup-bot', arn: node, action: 'terminate', params: {}, atMs: 50 });
  }

  // An incident: every agent keeps restarting checkout pods it believes are unhealthy, for a while.
  const storm: Intent[] = [];
  const waves = Math.max(1, Math.round((scale.durationSec * 1000) / 500));
  for (let w = 0; w < waves; w++) {
    for (let i = 0; i < n; i++) {
      storm.push({
        agentId: agent('pager-bot', i),
        arn: podArn(checkout, 'checkout', (i + w) % 2),
        action: 'restart',
        params: {},
        incidentId: 'INC-4242',
        atMs: w * 500 + (i % 5) * 20,
      });
    }
  }

  return [
    { name: 'same-pod-restart', title: 'Two agents restart the same pod', expectedViolations: ['overlapping_restart'], marker: `/ns/${NS.restart}/`, intents: sameRestart },
    {
      name: 'rollback-vs-hotfix',
      title: 'A rollback erases a hotfix',
      expectedViolations: ['lost_hotfix'],
      marker: `/ns/${NS.deploy}/`,
      setup: [{ arn: web, action: 'deploy', params: { revision: 'v2' } }],
      intents: rollbackHotfix,
    },
    { name: 'concurrent-drains', title: 'Drains take a service below its minimum', expectedViolations: ['below_min_available'], marker: `/ns/${NS.drain}/`, intents: drains },
    { name: 'drain-then-terminate', title: 'A terminate runs before its drain', expectedViolations: ['terminate_before_drain'], marker: '/node/lab-node-', intents: drainTerminate },
    { name: 'incident-storm', title: 'Duplicate storm during an incident', expectedViolations: ['overlapping_restart'], marker: `/ns/${NS.incident}/`, intents: storm },
    {
      name: 'node-replacement',
      title: 'Nodes replaced while agents work on their pods',
      expectedViolations: ['below_min_available', 'terminate_before_drain'],
      marker: [`/ns/${NS.nodes}/`, '/node/nr-'],
      intents: nodeReplacement(n),
    },
  ];
}

/**
 * Node operators each drain a lab node and terminate it 50 ms later; a careless bot terminates
 * nr-node-4 before its operator has drained it; meanwhile other agents restart and drain pods of
 * the workloads on those nodes. Uncoordinated, the drains evict every pod at once (below the
 * minimum) and the terminates hit nodes still draining. Through Arbiter a drain becomes cordon +
 * one eviction per pod within each workload's budget, and a terminate waits for its node to be
 * drained: nr-node-4's operator drains it at 300 ms, which is what the careless terminate waits for.
 */
function nodeReplacement(agents: number): Intent[] {
  const intents: Intent[] = [];
  NR_NODES.forEach((name, i) => {
    const node = nodeArn(name);
    const at = name === 'nr-node-4' ? 300 : i * 10;
    intents.push({ agentId: agent('node-operator', i), arn: node, action: 'drain', params: {}, atMs: at });
    intents.push({ agentId: agent('node-operator', i), arn: node, action: 'terminate', params: {}, atMs: at + 50 });
  });
  intents.push({ agentId: 'careless-bot', arn: nodeArn('nr-node-4'), action: 'terminate', params: {}, atMs: 100 });

  const api = deploymentArn(NS.nodes, 'api');
  const worker = deploymentArn(NS.nodes, 'worker');
  const pods = [...[0, 1, 2, 3].map((i) => podArn(api, 'api', i)), ...[0, 1, 2].map((i) => podArn(worker, 'worker', i))];
  // Bounded: through Arbiter every pod action waits its turn in a budget of one pod per workload.
  const podAgents = Math.min(8, Math.max(2, agents - intents.length));
  for (let i = 0; i < podAgents; i++) {
    const restart = i % 2 === 0;
    intents.push({
      agentId: agent(restart ? 'restart-bot' : 'pod-drain-bot', Math.floor(i / 2)),
      arn: pods[i % pods.length]!,
      action: restart ? 'restart' : 'drain',
      params: {},
      atMs: 20 + i * 25,
    });
  }
  return intents;
}
