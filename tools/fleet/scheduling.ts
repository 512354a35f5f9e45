import { randomUUID } from 'node:crypto';
import type { ActionContext } from './action-context.ts';
import { capacityChanged, type FleetNode, leastLoaded, leaveNode, type Pod, placeOn } from './fleet-state.ts';

/**
 * The pod has left `from` (evicted, or its node went away): it stays unready, held by the request
 * that moved it, until a replacement is running on another ready node `replace` ms later. With no
 * such node it stays pending and tries again every `replace` ms, as a real scheduler would.
 */
export function replaceElsewhere(ctx: ActionContext, pod: Pod, from: FleetNode | null): void {
  const { state, req } = ctx;
  leaveNode(pod);
  pod.holds.set(req.requestId, { agentId: req.agentId, reason: 'replace' });
  const replaceMs = state.spec.latencyMs.replace * state.latencyScale;
  const attempt = () => {
    // Scaled away (or scaled away and back) meanwhile: its holds were cleared, nothing to replace.
    if (pod.holds.get(req.requestId)?.reason !== 'replace') return;
    if (!land(ctx, pod, from)) return ctx.schedule(replaceMs, attempt);
    pod.holds.delete(req.requestId);
    capacityChanged(state, pod.deployment);
  };
  ctx.schedule(replaceMs, attempt);
}

/**
 * A pod scale-up created or revived: on the least-loaded ready node at once, or pending until
 * one is ready. False when it is pending.
 */
export function scheduleNew(ctx: ActionContext, pod: Pod): boolean {
  if (ctx.state.nodes.length === 0) return true;
  const target = leastLoaded(ctx.state);
  if (target) placeOn(pod, target);
  else replaceElsewhere(ctx, pod, null);
  return target !== null;
}

/**
 * Puts the pod on a node as a new instance (new uid). False when the fleet has nodes and none can
 * take it. A fleet without nodes runs pods nowhere in particular; a pod another replacement has
 * already placed keeps that instance.
 */
function land(ctx: ActionContext, pod: Pod, from: FleetNode | null): boolean {
  if (pod.node !== null) return true;
  if (ctx.state.nodes.length > 0) {
    const target = leastLoaded(ctx.state, from);
    if (!target) return false;
    placeOn(pod, target);
  }
  pod.uid = randomUUID();
  pod.generation += 1;
  return true;
}
