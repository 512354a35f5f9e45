import { randomUUID } from 'node:crypto';
import type { Observation, ObservedChange } from '../../src/index.ts';
import { deploymentArn, nodeArn, podArn } from './arns.ts';
import { ExecutionLog } from './executions.ts';
import type { FleetSpec } from './fleet-spec.ts';
import { unique, type Violation, ViolationLog } from './violations.ts';

/** How many applied requestIds a resource remembers for verification after a crash. */
const APPLIED_KEPT = 50;
/** Like a Deployment's revisionHistoryLimit: how far back rollbacks can go. */
const HISTORY_KEPT = 10;
const FENCED_KEPT = 1_000;
/** Changes an observation reports per resource. */
const CHANGES_KEPT = 20;

interface Tracked {
  arn: string;
  version: number;
  applied: string[];
  /** The latest changes applied, oldest first (bounded): what observations report as recentChanges. */
  changes: ObservedChange[];
  /** An array, not a set: a duplicate execution of one requestId must show up twice. */
  inProgress: Array<{ requestId: string; agentId: string }>;
}

/** Why a pod is not serving, per request; a pod is ready exactly when it has no holds. */
export interface PodHold {
  agentId: string;
  /** `replace`: off its node (or drained in place) until a replacement is running. */
  reason: 'restart' | 'drain' | 'evict' | 'replace';
}

export interface Pod extends Tracked {
  kind: 'pod';
  deployment: Deployment;
  index: number;
  /** False once scaled away; the slot (and its version) survives so a later scale-up never reuses a version. */
  present: boolean;
  uid: string;
  generation: number;
  /** Null in a fleet without nodes, and while the pod waits for a node to run on. */
  node: FleetNode | null;
  restarts: number;
  drains: number;
  holds: Map<string, PodHold>;
  lastRestart: { finishedAt: number; requestId: string; agentId: string } | null;
}

export interface Hotfix {
  requestId: string;
  agentId: string;
  patch: string;
  at: number;
  /** The deployment version the hotfix produced: a request based on an older version cannot have known it. */
  version: number;
}

export interface Revision {
  id: string;
  hotfixes: Hotfix[];
  /** The deploy request that made this revision, when one did. */
  setBy?: string;
}

export interface Deployment extends Tracked {
  kind: 'deployment';
  namespace: string;
  name: string;
  replicas: number;
  minAvailable: number;
  revision: Revision;
  /** Previous revisions, newest last. */
  history: Revision[];
  hotfixCount: number;
  /** Every pod slot ever created; `replicas` of them are present. */
  pods: Pod[];
  revisionChanges: Map<string, string>;
  dip: { violation: Violation; lowest: number } | null;
}

/** Only a `ready` node takes new pods; every other status is cordoned. */
export type NodeStatus = 'ready' | 'cordoned' | 'draining' | 'drained' | 'terminating' | 'terminated';

export interface FleetNode extends Tracked {
  kind: 'node';
  name: string;
  status: NodeStatus;
  /** Drains running on it: requestId → agentId. */
  drains: Map<string, string>;
  /** The pods running on it now. */
  pods: Set<Pod>;
}

export type Resource = Pod | Deployment | FleetNode;

export interface FencedAttempt {
  at: number;
  arn: string;
  requestId: string;
  agentId: string;
  action: string;
  fencingToken: number;
  highestToken: number;
  /**
   * `not_issued`: the token is higher than any lease Arbiter issued for the resource (the server's
   * token check; `highestToken` is then the highest issued). Absent: lower than one already seen.
   */
  reason?: 'not_issued';
}

export interface FleetStats {
  /** Executions started, per action. */
  executions: Record<string, number>;
  completed: Record<string, number>;
  failed: Record<string, number>;
  /** Executions started, all actions. */
  total: number;
  inFlight: number;
  /** Refused before starting: unknown resource or invalid action/params. */
  rejected: number;
  fenced: number;
}

/** Everything a reset throws away; actions still running finish against the state they started in. */
export interface FleetState {
  spec: FleetSpec;
  latencyScale: number;
  resources: Map<string, Resource>;
  /** In spec order: placement round-robins over them, and a tie between nodes goes to the first. */
  nodes: FleetNode[];
  highestToken: Map<string, number>;
  violations: ViolationLog;
  fenced: FencedAttempt[];
  stats: FleetStats;
  appliedEver: Set<string>;
  timers: Set<NodeJS.Timeout>;
  executions: ExecutionLog;
}

export function buildState(spec: FleetSpec, latencyScale: number): FleetState {
  const resources = new Map<string, Resource>();
  const nodes = spec.nodes.map((n): FleetNode => ({ ...tracked(nodeArn(n.name)), kind: 'node', name: n.name, status: 'ready', drains: new Map(), pods: new Set() }));
  const byName = new Map(nodes.map((node) => [node.name, node]));
  spec.deployments.forEach((d, index) => {
    const deployment: Deployment = {
      ...tracked(deploymentArn(d.namespace, d.name)),
      kind: 'deployment',
      namespace: d.namespace,
      name: d.name,
      replicas: d.replicas,
      minAvailable: d.minAvailable,
      revision: { id: d.revision, hotfixes: [] },
      history: [],
      hotfixCount: 0,
      pods: [],
      revisionChanges: new Map(),
      dip: null,
    };
    resources.set(deployment.arn, deployment);
    // Pinned nodes were validated with the spec; the offset spreads first replicas over the nodes.
    const hosts = d.nodes ? d.nodes.map((name) => byName.get(name)!) : nodes;
    const offset = d.nodes ? 0 : index;
    for (let i = 0; i < d.replicas; i++) {
      const [arn, pod] = addPodSlot(deployment);
      resources.set(arn, pod);
      if (hosts.length > 0) placeOn(pod, hosts[(offset + i) % hosts.length]!);
    }
  });
  for (const node of nodes) resources.set(node.arn, node);
  return {
    spec,
    latencyScale,
    resources,
    nodes,
    highestToken: new Map(),
    violations: new ViolationLog(),
    fenced: [],
    stats: { executions: {}, completed: {}, failed: {}, total: 0, inFlight: 0, rejected: 0, fenced: 0 },
    appliedEver: new Set(),
    timers: new Set(),
    executions: new ExecutionLog(),
  };
}

function tracked(arn: string): Tracked {
  return { arn, version: 1, applied: [], changes: [], inProgress: [] };
}

/** A new pod slot, on no node yet: the caller places it. */
export function addPodSlot(deployment: Deployment): [string, Pod] {
  const index = deployment.pods.length;
  const pod: Pod = {
    ...tracked(podArn(deployment.arn, deployment.name, index)),
    kind: 'pod',
    deployment,
    index,
    present: true,
    uid: randomUUID(),
    generation: 1,
    node: null,
    restarts: 0,
    drains: 0,
    holds: new Map(),
    lastRestart: null,
  };
  deployment.pods.push(pod);
  return [pod.arn, pod];
}

export function placeOn(pod: Pod, node: FleetNode): void {
  leaveNode(pod);
  pod.node = node;
  node.pods.add(pod);
}

export function leaveNode(pod: Pod): void {
  pod.node?.pods.delete(pod);
  pod.node = null;
}

/** Where the scheduler puts a pod: the ready node with the fewest pods, never `exclude` (the node it left). */
export function leastLoaded(state: FleetState, exclude: FleetNode | null = null): FleetNode | null {
  let best: FleetNode | null = null;
  for (const node of state.nodes) {
    if (node.status !== 'ready' || node === exclude) continue;
    if (!best || node.pods.size < best.pods.size) best = node;
  }
  return best;
}

export function recordApplied(state: FleetState, resource: Resource, req: { requestId: string; agentId: string; action: string; params: Record<string, string> }): void {
  resource.version += 1;
  resource.applied.push(req.requestId);
  if (resource.applied.length > APPLIED_KEPT) resource.applied.splice(0, resource.applied.length - APPLIED_KEPT);
  const basis = Number(req.params.basedOnVersion ?? req.params.expectedVersion ?? Number.NaN);
  resource.changes.push({
    requestId: req.requestId,
    agentId: req.agentId,
    action: req.action,
    version: resource.version,
    basedOnVersion: Number.isInteger(basis) ? basis : null,
    at: Date.now(),
  });
  if (resource.changes.length > CHANGES_KEPT) resource.changes.shift();
  state.appliedEver.add(req.requestId);
}

/**
 * Requests whose change is still in effect: for a deployment, the deploy that set its running
 * revision and the hotfixes in it; other kinds cannot tell (null).
 */
export function effectiveRequestIds(resource: Resource): string[] | null {
  if (resource.kind !== 'deployment') return null;
  const { revision } = resource;
  return [...(revision.setBy ? [revision.setBy] : []), ...revision.hotfixes.map((h) => h.requestId)];
}

export function pushHistory(deployment: Deployment, revision: Revision): void {
  deployment.history.push(revision);
  if (deployment.history.length > HISTORY_KEPT) deployment.history.shift();
}

export function recordFenced(state: FleetState, attempt: FencedAttempt): void {
  state.stats.fenced += 1;
  state.fenced.push(attempt);
  if (state.fenced.length > FENCED_KEPT) state.fenced.shift();
}

export function availableOf(deployment: Deployment): number {
  let available = 0;
  for (const pod of deployment.pods) if (pod.present && pod.holds.size === 0) available += 1;
  return available;
}

/**
 * Called after anything that can change a deployment's capacity. A dip below minAvailable is
 * one violation however long it lasts; it deepens in place and names everyone holding pods down.
 */
export function capacityChanged(state: FleetState, deployment: Deployment, cause?: { requestId: string; agentId: string }): void {
  const available = availableOf(deployment);
  if (available >= deployment.minAvailable) {
    deployment.dip = null;
    return;
  }
  const requestIds: string[] = cause ? [cause.requestId] : [];
  const agentIds: string[] = cause ? [cause.agentId] : [];
  for (const pod of deployment.pods) {
    for (const [requestId, hold] of pod.holds) {
      requestIds.push(requestId);
      agentIds.push(hold.agentId);
    }
  }
  const detail = (lowest: number) =>
    `available fell to ${lowest} of ${deployment.replicas} desired, below minAvailable ${deployment.minAvailable}`;
  if (!deployment.dip) {
    const violation = state.violations.record({ kind: 'below_min_available', arn: deployment.arn, detail: detail(available), requestIds, agentIds });
    deployment.dip = { violation, lowest: available };
    return;
  }
  const { violation } = deployment.dip;
  violation.requestIds = unique([...violation.requestIds, ...requestIds]);
  violation.agentIds = unique([...violation.agentIds, ...agentIds]);
  if (available < deployment.dip.lowest) {
    deployment.dip.lowest = available;
    violation.detail = detail(available);
  }
}

export type PodStatus = 'ready' | 'restarting' | 'draining' | 'evicting' | 'replacing' | 'removed';

/** A pod held for several reasons shows the most disruptive one, in this order. */
const HOLD_STATUS: Array<[PodHold['reason'], PodStatus]> = [
  ['drain', 'draining'],
  ['evict', 'evicting'],
  ['replace', 'replacing'],
  ['restart', 'restarting'],
];

export function podStatus(pod: Pod): PodStatus {
  if (!pod.present) return 'removed';
  if (pod.holds.size === 0) return 'ready';
  const reasons = new Set([...pod.holds.values()].map((hold) => hold.reason));
  return HOLD_STATUS.find(([reason]) => reasons.has(reason))![1];
}

export function unknownObservation(arn: string): Observation {
  return { arn, exists: false, kind: 'unknown', version: 0, state: {}, appliedRequestIds: [], inProgressRequestIds: [] };
}

export function observe(resource: Resource): Observation {
  const base = {
    arn: resource.arn,
    version: resource.version,
    appliedRequestIds: [...resource.applied],
    inProgressRequestIds: resource.inProgress.map((p) => p.requestId),
  };
  switch (resource.kind) {
    case 'pod':
      return { ...base, exists: resource.present, kind: 'pod', state: describe(resource), workload: capacityOf(resource.deployment) };
    case 'deployment':
      return { ...base, exists: true, kind: 'deployment', state: describe(resource), workload: capacityOf(resource) };
    case 'node':
      return { ...base, exists: true, kind: 'node', state: describe(resource) };
  }
}

export function describe(resource: Resource): Record<string, unknown> {
  switch (resource.kind) {
    case 'pod': {
      const status = podStatus(resource);
      return {
        deployment: resource.deployment.arn,
        name: `${resource.deployment.name}-${resource.index}`,
        uid: resource.uid,
        generation: resource.generation,
        node: resource.node?.name ?? null,
        status,
        ready: status === 'ready',
        restarts: resource.restarts,
        drains: resource.drains,
      };
    }
    case 'deployment':
      return {
        namespace: resource.namespace,
        name: resource.name,
        replicas: resource.replicas,
        available: availableOf(resource),
        minAvailable: resource.minAvailable,
        revision: resource.revision.id,
        hotfixes: resource.revision.hotfixes.map((h) => ({ ...h })),
        history: resource.history.map((r) => r.id),
      };
    case 'node':
      return {
        name: resource.name,
        status: resource.status,
        cordoned: resource.status !== 'ready',
        pods: [...resource.pods].map((pod) => pod.arn),
        drainsRunning: resource.drains.size,
      };
  }
}

function capacityOf(deployment: Deployment): NonNullable<Observation['workload']> {
  return { arn: deployment.arn, desired: deployment.replicas, available: availableOf(deployment), minAvailable: deployment.minAvailable };
}
