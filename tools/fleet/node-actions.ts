import { type ActionContext, done, type PreparedAction, type Refusal, refuse } from './action-context.ts';
import { capacityChanged, type Deployment, type FleetNode, type Pod } from './fleet-state.ts';
import { replaceElsewhere } from './scheduling.ts';

function nodeGone(node: FleetNode): Refusal | null {
  return node.status === 'terminating' || node.status === 'terminated'
    ? refuse('NODE_TERMINATED', `node ${node.name} is ${node.status}`)
    : null;
}

/** No new pods on the node; the ones on it keep running. Idempotent on a node already cordoned, draining or drained. */
export function cordonNode(ctx: ActionContext, node: FleetNode): PreparedAction | Refusal {
  const gone = nodeGone(node);
  if (gone) return gone;
  return {
    ok: true,
    start() {
      if (node.status === 'ready') node.status = 'cordoned';
    },
    // A terminate meanwhile does not undo the cordon: it still took effect.
    finish: () => done(`cordoned (node is ${node.status})`),
  };
}

/**
 * What a drain does when an agent runs it directly: cordon, and evict every pod on the node at
 * once, whatever each workload's budget allows. The pods are unready from the start; at the end
 * they have left the node and their replacements are on their way elsewhere.
 */
export function drainNode(ctx: ActionContext, node: FleetNode): PreparedAction | Refusal {
  const gone = nodeGone(node);
  if (gone) return gone;
  const { req, state } = ctx;
  let evicted: Pod[] = [];
  return {
    ok: true,
    start() {
      node.drains.set(req.requestId, req.agentId);
      if (node.status === 'ready' || node.status === 'cordoned') node.status = 'draining';
      evicted = [...node.pods];
      for (const pod of evicted) pod.holds.set(req.requestId, { agentId: req.agentId, reason: 'evict' });
      for (const deployment of deploymentsOf(evicted)) capacityChanged(state, deployment, req);
    },
    finish() {
      node.drains.delete(req.requestId);
      for (const pod of evicted) finishEviction(ctx, pod, node);
      if (nodeGone(node)) return refuse('NODE_TERMINATED', `node ${node.name} was terminated while draining`);
      node.status = 'drained';
      return done(`cordoned and drained; ${evicted.length} pod(s) evicted`);
    },
  };
}

/**
 * Terminating a node with pods on it kills them at once (a workload may fall below its minimum);
 * they are replaced elsewhere. terminate_before_drain is judged on the node's status, not its pods:
 * a node nobody drained is a mistake even when it happens to be empty.
 */
export function terminateNode(ctx: ActionContext, node: FleetNode): PreparedAction | Refusal {
  const gone = nodeGone(node);
  if (gone) return gone;
  const { req, state } = ctx;
  return {
    ok: true,
    start() {
      if (node.status !== 'drained' || node.drains.size > 0) {
        const drains = [...node.drains];
        const situation = node.drains.size > 0 ? 'its drain was still running' : `it was ${node.status}`;
        state.violations.record({
          kind: 'terminate_before_drain',
          arn: node.arn,
          detail: `terminate by ${req.agentId} started while ${situation}`,
          requestIds: [...drains.map(([requestId]) => requestId), req.requestId],
          agentIds: [...drains.map(([, agentId]) => agentId), req.agentId],
        });
      }
      node.status = 'terminating';
      const killed = [...node.pods];
      for (const pod of killed) replaceElsewhere(ctx, pod, node);
      for (const deployment of deploymentsOf(killed)) capacityChanged(state, deployment, req);
    },
    finish() {
      node.status = 'terminated';
      return done('terminated');
    },
  };
}

/** One pod off its node: unready from the start, replaced on another node once the eviction is done. */
export function evictPod(ctx: ActionContext, pod: Pod): PreparedAction {
  const { req, state } = ctx;
  let from: FleetNode | null = null;
  return {
    ok: true,
    start() {
      from = pod.node;
      pod.holds.set(req.requestId, { agentId: req.agentId, reason: 'evict' });
      capacityChanged(state, pod.deployment, req);
    },
    finish() {
      if (!pod.present) {
        pod.holds.delete(req.requestId);
        return refuse('RESOURCE_REMOVED', `pod ${pod.arn} was scaled away during the eviction`);
      }
      const moved = pod.node !== from;
      finishEviction(ctx, pod, from);
      if (moved) return done(`evicted; the pod had already left ${from?.name ?? 'its node'}`);
      return done(`evicted from ${from?.name ?? 'no node'}; replacement on its way`);
    },
  };
}

/**
 * The end of one eviction. A pod still where the eviction found it leaves for a replacement
 * elsewhere (its hold becomes the replacement's); one that has left meanwhile (another eviction,
 * its node terminated, scaled away) is already being replaced, so this eviction just lets go.
 */
function finishEviction(ctx: ActionContext, pod: Pod, from: FleetNode | null): void {
  if (pod.present && pod.node === from) return replaceElsewhere(ctx, pod, from);
  pod.holds.delete(ctx.req.requestId);
  capacityChanged(ctx.state, pod.deployment);
}

function deploymentsOf(pods: Pod[]): Set<Deployment> {
  return new Set(pods.map((pod) => pod.deployment));
}
