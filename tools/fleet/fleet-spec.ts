import { z } from 'zod';
import { ACTIONS, type ActionName, ArbiterError } from '../../src/index.ts';

/** `replace` is not an action: it is how long a drained pod's replacement takes to become ready. */
export const LATENCY_KEYS = [...ACTIONS, 'replace'] as const;
export type LatencyKey = (typeof LATENCY_KEYS)[number];

export interface DeploymentSpec {
  namespace: string;
  name: string;
  replicas: number;
  minAvailable: number;
  revision: string;
  /**
   * Nodes its replicas start on, round-robin. Absent: every node of the spec, round-robin from an
   * offset that differs per deployment, so workloads spread and no node holds every first replica.
   */
  nodes?: string[];
}

export interface NodeSpec {
  name: string;
}

export interface FleetSpec {
  deployments: DeploymentSpec[];
  nodes: NodeSpec[];
  latencyMs: Record<LatencyKey, number>;
  /** Probability (0..1) that an action fails after its latency without changing anything. */
  failureRate: Partial<Record<ActionName, number>>;
  /** A second restart of a pod within this long after the previous one finished lands on a pod still settling. */
  restartSettleMs: number;
  /**
   * When a rollback/deploy does not say which version it was based on, a hotfix by another
   * agent younger than this is assumed to have been unknown to it, hence lost.
   */
  lostHotfixWindowMs: number;
}

/** What a `--fleet` file or `POST /reset` body may hold: every field optional, filled from the default. */
export type FleetSpecInput = Partial<Omit<FleetSpec, 'latencyMs'>> & { latencyMs?: Partial<Record<LatencyKey, number>> };

export const DEFAULT_LATENCY_MS: Readonly<Record<LatencyKey, number>> = Object.freeze({
  restart: 300,
  rollback: 300,
  hotfix: 300,
  deploy: 300,
  scale: 200,
  drain: 400,
  terminate: 300,
  cordon: 50,
  evict: 300,
  replace: 1500,
});

export const DEFAULT_FLEET_SPEC: Readonly<FleetSpec> = Object.freeze({
  deployments: [
    { namespace: 'payments', name: 'api', replicas: 4, minAvailable: 3, revision: 'v1' },
    { namespace: 'payments', name: 'worker', replicas: 3, minAvailable: 2, revision: 'v1' },
    { namespace: 'checkout', name: 'web', replicas: 3, minAvailable: 2, revision: 'v1' },
  ],
  nodes: [{ name: 'node-1' }, { name: 'node-2' }, { name: 'node-3' }, { name: 'node-4' }],
  latencyMs: { ...DEFAULT_LATENCY_MS },
  failureRate: {},
  restartSettleMs: 1000,
  lostHotfixWindowMs: 30_000,
});

// Names end up inside ARNs, where `/` and `:` are separators.
const name = z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a DNS-style name (a-z, 0-9, - and .)');

const deploymentSchema = z
  .strictObject({
    namespace: name,
    name,
    replicas: z.int().min(0).max(10_000),
    minAvailable: z.int().min(0),
    revision: z.string().min(1),
    nodes: z.array(name).min(1).optional(),
  })
  .refine((d) => d.minAvailable <= d.replicas, { message: 'minAvailable must not exceed replicas', path: ['minAvailable'] });

const specSchema = z
  .strictObject({
    deployments: z.array(deploymentSchema).optional(),
    nodes: z.array(z.strictObject({ name })).optional(),
    latencyMs: z.partialRecord(z.enum(LATENCY_KEYS), z.number().min(0)).optional(),
    failureRate: z.partialRecord(z.enum(ACTIONS), z.number().min(0).max(1)).optional(),
    restartSettleMs: z.number().min(0).optional(),
    lostHotfixWindowMs: z.number().min(0).optional(),
  })
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    spec.deployments?.forEach((d, i) => {
      const key = `${d.namespace}/${d.name}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', message: `duplicate deployment ${key}`, path: ['deployments', i] });
      seen.add(key);
    });
    const nodes = new Set<string>();
    spec.nodes?.forEach((n, i) => {
      if (nodes.has(n.name)) ctx.addIssue({ code: 'custom', message: `duplicate node ${n.name}`, path: ['nodes', i] });
      nodes.add(n.name);
    });
    // Pinned nodes are checked against the nodes the fleet will have, the default ones included.
    const known = spec.nodes ? nodes : new Set(DEFAULT_FLEET_SPEC.nodes.map((n) => n.name));
    spec.deployments?.forEach((d, i) => {
      d.nodes?.forEach((node, j) => {
        if (!known.has(node)) ctx.addIssue({ code: 'custom', message: `unknown node ${node}`, path: ['deployments', i, 'nodes', j] });
      });
    });
  });

/** Validates a (partial) spec and fills it from the default; every problem is listed in one error. */
export function parseFleetSpec(input: unknown): FleetSpec {
  const parsed = specSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new ArbiterError('CONFIG_INVALID', `invalid fleet spec:\n  ${problems.join('\n  ')}`);
  }
  const spec = parsed.data;
  return {
    deployments: spec.deployments ?? DEFAULT_FLEET_SPEC.deployments.map((d) => ({ ...d })),
    nodes: spec.nodes ?? DEFAULT_FLEET_SPEC.nodes.map((n) => ({ ...n })),
    latencyMs: { ...DEFAULT_LATENCY_MS, ...spec.latencyMs },
    failureRate: { ...spec.failureRate },
    restartSettleMs: spec.restartSettleMs ?? DEFAULT_FLEET_SPEC.restartSettleMs,
    lostHotfixWindowMs: spec.lostHotfixWindowMs ?? DEFAULT_FLEET_SPEC.lostHotfixWindowMs,
  };
}

export interface GenerateFleetOptions {
  deployments: number;
  replicas: number;
  nodes: number;
  namespace?: string;
  /** Defaults to one below `replicas`: exactly one pod of each workload may be down at a time. */
  minAvailable?: number;
}

/** A uniform fleet for benchmarks: resources = deployments × (1 + replicas) + nodes. */
export function generateFleetSpec(options: GenerateFleetOptions): FleetSpec {
  const namespace = options.namespace ?? 'bench';
  const minAvailable = options.minAvailable ?? Math.max(0, options.replicas - 1);
  const width = String(Math.max(options.deployments, options.nodes)).length;
  const pad = (i: number) => String(i).padStart(width, '0');
  return parseFleetSpec({
    deployments: Array.from({ length: options.deployments }, (_, i) => ({
      namespace,
      name: `svc-${pad(i)}`,
      replicas: options.replicas,
      minAvailable,
      revision: 'v1',
    })),
    nodes: Array.from({ length: options.nodes }, (_, i) => ({ name: `node-${pad(i + 1)}` })),
  });
}
