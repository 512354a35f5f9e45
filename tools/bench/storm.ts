import { buildRequest, newId, type RemediationRequest, type Serde } from '../../src/index.ts';
import { deploymentArn, generateFleetSpec, podArn, type FleetSpec } from '../fleet/index.ts';
import { compileScopeRules, DEFAULT_SCOPE_RULES, partitionForKey } from '../../src/routing/index.ts';
import { progressBar } from './progress.ts';
import { seededRandom } from './stats.ts';

/** Pods per generated deployment: 1,112 deployments × 9 = 10,008 pods for the full storm. */
export const REPLICAS = 9;
const NAMESPACE = 'bench';

/** A pod the storm targets, with the Kafka key (its workload's scope) and partition its requests go to. */
export interface TargetPod {
  arn: string;
  scope: string;
  key: Buffer;
  partition: number;
}

export interface BenchFleet {
  spec: FleetSpec;
  /** Pods the storm hits (every pod of the first `stormDeployments` deployments). */
  stormPods: TargetPod[];
  /** Pods kept apart for the latency probe, so its requests are not absorbed by the storm's windows. */
  probePods: TargetPod[];
}

/**
 * One simulated fleet for the whole run: the storm's deployments, then the probe's. Resources are
 * rounded up to whole deployments of REPLICAS pods.
 */
export function benchFleet(stormResources: number, probeResources: number, partitions: number): BenchFleet {
  const stormDeployments = Math.ceil(stormResources / REPLICAS);
  const probeDeployments = Math.ceil(probeResources / REPLICAS);
  const spec = generateFleetSpec({ deployments: stormDeployments + probeDeployments, replicas: REPLICAS, nodes: 0, namespace: NAMESPACE });
  const scopes = compileScopeRules(DEFAULT_SCOPE_RULES);
  const pods: TargetPod[] = [];
  for (const d of spec.deployments) {
    const workload = deploymentArn(d.namespace, d.name);
    const scope = scopes.scopeOf(podArn(workload, d.name, 0));
    const key = Buffer.from(scope);
    const partition = partitionForKey(scope, partitions);
    for (let i = 0; i < d.replicas; i++) pods.push({ arn: podArn(workload, d.name, i), scope, key, partition });
  }
  return {
    spec,
    stormPods: pods.slice(0, stormDeployments * REPLICAS),
    probePods: pods.slice(stormDeployments * REPLICAS),
  };
}

/** Pre-encoded records: Confluent-framed Avro values, keyed by scope, partition already chosen. */
export interface EncodedStorm {
  count: number;
  values: Buffer[];
  /** Index into `pods` of each record. */
  podOf: Uint32Array;
  pods: TargetPod[];
  /** Distinct pods that received at least one request: the executions to expect (one window). */
  distinctPods: number;
  /** Kept only when asked for (the probe needs them; the storm does not). */
  requestIds: string[] | null;
  bytes: number;
}

export interface StormOptions {
  requests: number;
  pods: TargetPod[];
  /** Distinct agents; the k-th duplicate of a pod comes from agent k mod agents. */
  agents: number;
  seed: number;
  keepRequestIds?: boolean;
  label?: string;
}

/**
 * The duplicate order of the storm: request j targets pod order[j]. Every pod gets ⌊N/M⌋ or
 * ⌈N/M⌉ requests, shuffled (seeded) so the duplicates of a pod are spread over the whole storm.
 */
export function stormOrder(requests: number, pods: number, seed: number): Uint32Array {
  const order = new Uint32Array(requests);
  for (let j = 0; j < requests; j++) order[j] = j % pods;
  const random = seededRandom(seed);
  for (let j = requests - 1; j > 0; j--) {
    const k = Math.floor(random() * (j + 1));
    const t = order[j]!;
    order[j] = order[k]!;
    order[k] = t;
  }
  return order;
}

/** The request of the storm's j-th record; distinct requestIds, distinct agents per duplicate. */
export function stormRequest(pod: TargetPod, duplicate: number, agents: number, now: number): RemediationRequest {
  return buildRequest(
    {
      requestId: newId(),
      agentId: `agent-${String(duplicate % agents).padStart(3, '0')}`,
      resourceArn: pod.arn,
      action: 'restart',
      reason: 'bench storm: pod not ready',
      incidentId: 'bench',
    },
    now,
  );
}

/** Builds and encodes the whole storm once, through the same Serde the workers decode with. */
export async function encodeStorm(serde: Serde, options: StormOptions): Promise<EncodedStorm> {
  const { requests, pods, agents } = options;
  const order = stormOrder(requests, pods.length, options.seed);
  const duplicates = new Uint32Array(pods.length);
  const values: Buffer[] = new Array(requests);
  const requestIds: string[] | null = options.keepRequestIds ? new Array(requests) : null;
  const bar = requests >= 20_000 ? progressBar(options.label ?? 'encode', requests) : null;
  const now = Date.now();
  let bytes = 0;
  for (let j = 0; j < requests; j++) {
    const p = order[j]!;
    const request = stormRequest(pods[p]!, duplicates[p]!++, agents, now);
    const value = await serde.encodeRequest(request);
    values[j] = value;
    bytes += value.length;
    if (requestIds) requestIds[j] = request.requestId;
    if (bar && j % 10_000 === 0) bar.update(j);
  }
  bar?.update(requests);
  bar?.stop();
  let distinctPods = 0;
  for (const d of duplicates) if (d > 0) distinctPods++;
  return { count: requests, values, podOf: order, pods, distinctPods, requestIds, bytes };
}

/** The j-th record as kafkajs wants it. */
export function stormMessage(storm: EncodedStorm, j: number, timestamp?: number): { key: Buffer; value: Buffer; partition: number; timestamp?: string } {
  const pod = storm.pods[storm.podOf[j]!]!;
  return { key: pod.key, value: storm.values[j]!, partition: pod.partition, ...(timestamp !== undefined ? { timestamp: String(timestamp) } : {}) };
}
