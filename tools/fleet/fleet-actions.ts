import { randomUUID } from 'node:crypto';
import { type ActionContext, done, type PreparedAction, type Refusal, refuse } from './action-context.ts';
import { addPodSlot, capacityChanged, type Deployment, leaveNode, type Pod, pushHistory, type Resource, type Revision } from './fleet-state.ts';
import { cordonNode, drainNode, evictPod, terminateNode } from './node-actions.ts';
import { scheduleNew } from './scheduling.ts';

export {
  type ActionContext,
  type ActionRequest,
  type FleetErrorCode,
  type Finished,
  type PreparedAction,
  type Refusal,
  refuse,
} from './action-context.ts';

export function prepareAction(ctx: ActionContext, resource: Resource): PreparedAction | Refusal {
  const { action } = ctx.req;
  switch (resource.kind) {
    case 'pod':
      if (action === 'restart') return restartPod(ctx, resource);
      if (action === 'drain') return drainPod(ctx, resource);
      if (action === 'evict') return evictPod(ctx, resource);
      break;
    case 'deployment':
      if (action === 'rollback') return rollback(ctx, resource);
      if (action === 'hotfix') return hotfix(ctx, resource);
      if (action === 'deploy') return deploy(ctx, resource);
      if (action === 'scale') return scale(ctx, resource);
      break;
    case 'node':
      if (action === 'cordon') return cordonNode(ctx, resource);
      if (action === 'drain') return drainNode(ctx, resource);
      if (action === 'terminate') return terminateNode(ctx, resource);
      break;
  }
  return refuse('INVALID_ACTION', `action '${action}' does not apply to a ${resource.kind}`);
}

function restartPod(ctx: ActionContext, pod: Pod): PreparedAction {
  const { req, state } = ctx;
  return {
    ok: true,
    start() {
      const running = [...pod.holds].filter(([, hold]) => hold.reason === 'restart');
      const settleMs = state.spec.restartSettleMs * state.latencyScale;
      const last = pod.lastRestart;
      const settling = last !== null && ctx.now() - last.finishedAt < settleMs;
      if (running.length > 0 || settling) {
        const others = running.map(([requestId, hold]) => ({ requestId, agentId: hold.agentId }));
        if (settling && last) others.push({ requestId: last.requestId, agentId: last.agentId });
        const why = running.length > 0 ? 'another restart was running' : `the previous restart finished ${ctx.now() - last!.finishedAt} ms earlier`;
        state.violations.record({
          kind: 'overlapping_restart',
          arn: pod.arn,
          detail: `restart by ${req.agentId} started while ${why}`,
          requestIds: [...others.map((o) => o.requestId), req.requestId],
          agentIds: [...others.map((o) => o.agentId), req.agentId],
        });
      }
      pod.holds.set(req.requestId, { agentId: req.agentId, reason: 'restart' });
      capacityChanged(state, pod.deployment, req);
    },
    finish() {
      pod.holds.delete(req.requestId);
      pod.lastRestart = { finishedAt: ctx.now(), requestId: req.requestId, agentId: req.agentId };
      capacityChanged(state, pod.deployment);
      if (!pod.present) return refuse('RESOURCE_REMOVED', `pod ${pod.arn} was scaled away during the restart`);
      pod.restarts += 1;
      return done(`restarted; restarts=${pod.restarts}`);
    },
  };
}

function drainPod(ctx: ActionContext, pod: Pod): PreparedAction {
  const { req, state } = ctx;
  return {
    ok: true,
    start() {
      pod.holds.set(req.requestId, { agentId: req.agentId, reason: 'drain' });
      capacityChanged(state, pod.deployment, req);
    },
    finish() {
      if (!pod.present) {
        pod.holds.delete(req.requestId);
        return refuse('RESOURCE_REMOVED', `pod ${pod.arn} was scaled away during the drain`);
      }
      pod.drains += 1;
      pod.holds.set(req.requestId, { agentId: req.agentId, reason: 'replace' });
      const replaceMs = state.spec.latencyMs.replace * state.latencyScale;
      ctx.schedule(replaceMs, () => {
        if (pod.holds.get(req.requestId)?.reason !== 'replace') return;
        pod.holds.delete(req.requestId);
        if (pod.present) {
          pod.uid = randomUUID();
          pod.generation += 1;
        }
        capacityChanged(state, pod.deployment);
      });
      return done(`drained; replacement ready in ~${Math.round(replaceMs)} ms`);
    },
  };
}

/**
 * Two revision changes running at once on one deployment: whichever finishes last silently wins.
 * The conflict is counted when the second one starts.
 */
function beginRevisionChange(ctx: ActionContext, deployment: Deployment): void {
  const { req, state } = ctx;
  if (deployment.revisionChanges.size > 0) {
    const others = [...deployment.revisionChanges];
    state.violations.record({
      kind: 'concurrent_conflicting_changes',
      arn: deployment.arn,
      detail: `${req.action} by ${req.agentId} started while ${others.length} other revision change(s) were running`,
      requestIds: [...others.map(([requestId]) => requestId), req.requestId],
      agentIds: [...others.map(([, agentId]) => agentId), req.agentId],
    });
  }
  deployment.revisionChanges.set(req.requestId, req.agentId);
}

/** A hotfix by another agent disappears, and the request that removed it cannot have known it existed. */
function checkLostHotfixes(ctx: ActionContext, deployment: Deployment, from: Revision, to: Revision): void {
  const { req, state } = ctx;
  const basedOn = parseVersion(req.params.basedOnVersion ?? req.params.expectedVersion);
  const kept = new Set(to.hotfixes.map((h) => h.requestId));
  for (const hotfix of from.hotfixes) {
    if (kept.has(hotfix.requestId) || hotfix.agentId === req.agentId) continue;
    const unaware =
      basedOn !== undefined ? basedOn < hotfix.version : ctx.now() - hotfix.at < state.spec.lostHotfixWindowMs;
    if (!unaware) continue;
    const basis = basedOn !== undefined ? `based on version ${basedOn}` : `${ctx.now() - hotfix.at} ms after it, without a base version`;
    state.violations.record({
      kind: 'lost_hotfix',
      arn: deployment.arn,
      detail: `${req.action} by ${req.agentId} (${basis}) removed hotfix '${hotfix.patch}' by ${hotfix.agentId} (version ${hotfix.version})`,
      requestIds: [hotfix.requestId, req.requestId],
      agentIds: [hotfix.agentId, req.agentId],
    });
  }
}

function parseVersion(raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}

function rollback(ctx: ActionContext, deployment: Deployment): PreparedAction | Refusal {
  if (deployment.history.length === 0) {
    return refuse('NO_PREVIOUS_REVISION', `deployment is at ${deployment.revision.id} with no previous revision`);
  }
  return {
    ok: true,
    start: () => beginRevisionChange(ctx, deployment),
    finish() {
      deployment.revisionChanges.delete(ctx.req.requestId);
      const previous = deployment.history.pop();
      if (!previous) return refuse('NO_PREVIOUS_REVISION', 'the previous revision was consumed by a concurrent rollback');
      const from = deployment.revision;
      checkLostHotfixes(ctx, deployment, from, previous);
      deployment.revision = previous;
      return done(`rolled back from ${from.id} to ${previous.id}`);
    },
  };
}

function hotfix(ctx: ActionContext, deployment: Deployment): PreparedAction | Refusal {
  const patch = ctx.req.params.patch;
  if (!patch) return refuse('INVALID_PARAMS', "hotfix needs params.patch");
  return {
    ok: true,
    start: () => beginRevisionChange(ctx, deployment),
    finish() {
      deployment.revisionChanges.delete(ctx.req.requestId);
      const base = deployment.revision;
      deployment.hotfixCount += 1;
      const applied = {
        requestId: ctx.req.requestId,
        agentId: ctx.req.agentId,
        patch,
        at: ctx.now(),
        // recordApplied bumps the version right after finish() succeeds.
        version: deployment.version + 1,
      };
      pushHistory(deployment, base);
      // A hotfix patches the running revision: the deploy that made it is still in effect.
      deployment.revision = { id: `${base.id}+hotfix.${deployment.hotfixCount}`, hotfixes: [...base.hotfixes, applied], ...(base.setBy ? { setBy: base.setBy } : {}) };
      return done(`hotfix '${patch}' applied as ${deployment.revision.id}`);
    },
  };
}

function deploy(ctx: ActionContext, deployment: Deployment): PreparedAction | Refusal {
  const target = ctx.req.params.revision;
  if (!target) return refuse('INVALID_PARAMS', 'deploy needs params.revision');
  return {
    ok: true,
    start: () => beginRevisionChange(ctx, deployment),
    finish() {
      deployment.revisionChanges.delete(ctx.req.requestId);
      const from = deployment.revision;
      const to: Revision = { id: target, hotfixes: [], setBy: ctx.req.requestId };
      checkLostHotfixes(ctx, deployment, from, to);
      pushHistory(deployment, from);
      deployment.revision = to;
      return done(`deployed ${target} over ${from.id}`);
    },
  };
}

function scale(ctx: ActionContext, deployment: Deployment): PreparedAction | Refusal {
  const raw = ctx.req.params.replicas ?? '';
  const replicas = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(replicas) || replicas > 10_000) {
    return refuse('INVALID_PARAMS', 'scale needs params.replicas, an integer from 0 to 10000');
  }
  return {
    ok: true,
    start() {},
    finish() {
      const from = deployment.replicas;
      // Scale-down removes the highest slots; scale-up revives removed slots before creating new ones.
      deployment.pods.forEach((pod, index) => {
        const present = index < replicas;
        if (present === pod.present) return;
        pod.present = present;
        pod.holds.clear();
        if (!present) return leaveNode(pod);
        pod.uid = randomUUID();
        pod.generation += 1;
        scheduleNew(ctx, pod);
      });
      while (deployment.pods.length < replicas) {
        const [arn, pod] = addPodSlot(deployment);
        ctx.state.resources.set(arn, pod);
        scheduleNew(ctx, pod);
      }
      deployment.replicas = replicas;
      capacityChanged(ctx.state, deployment, ctx.req);
      return done(`scaled from ${from} to ${replicas} replicas`);
    },
  };
}
