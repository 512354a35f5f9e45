import { derivedId } from '../contract/ids.ts';
import type { Observation } from '../contract/observation.ts';
import type { ExpansionPlan, PlanStep } from '../contract/plan.ts';
import type { RemediationRequest } from '../contract/request.ts';

/**
 * What must hold before an action may run, per action and resource kind, checked at the head of
 * the queue on a fresh observation. Each entry says what happens when it does not hold:
 * - `wait`: DEFERRED (rule `precondition`) until it holds; REJECTED_PRECONDITION at the deadline;
 * - `reject`: REJECTED_PRECONDITION at once (waiting cannot make it hold);
 * - `expand`: Arbiter makes the plan that makes it hold, and the request waits for that plan.
 * docs/PLANS.md lists them; the observation fields they read are in docs/EXECUTOR.md.
 */
export const PRECONDITIONS: ReadonlyArray<{ action: string; kind: string; holds: string; otherwise: string }> = [
  { action: 'terminate', kind: 'node', holds: 'the node is drained: cordoned, no pods left, no drain running', otherwise: 'wait (or expand into a drain: preconditions.terminateUndrained)' },
  { action: 'drain', kind: 'node', holds: 'no pods left on the node (and it is not terminating)', otherwise: 'expand: cordon, then one eviction per pod, each in its workload\'s scope and budget (reject when terminating)' },
  { action: 'cordon', kind: 'node', holds: 'the node is not terminating or terminated', otherwise: 'reject' },
  { action: 'scale', kind: 'deployment', holds: 'a scale-down leaves at least the workload\'s minimum available', otherwise: 'reject' },
  { action: 'rollback', kind: 'deployment', holds: 'a previous revision exists', otherwise: 'reject' },
  { action: 'restart, drain, evict', kind: 'pod', holds: 'the disruption budget of its workload (the budget rule)', otherwise: 'wait' },
];

export type PreconditionCheck =
  | { kind: 'holds' }
  | { kind: 'wait'; detail: string }
  | { kind: 'reject'; detail: string }
  | { kind: 'expand'; detail: string; plan: ExpansionPlan };

export interface PreconditionRules {
  terminateUndrained: 'wait' | 'expand';
  /** The minimum available replicas of a workload, as the budget rule resolves it. */
  minAvailableOf(observed: Observation): number | null;
  /** The deadline of a plan Arbiter makes when the request has none. */
  defaultPlanDeadlineMs: number;
}

interface NodeView {
  status: string;
  /** null: the executor does not say which pods run on the node. */
  pods: string[] | null;
  drainsRunning: number;
}

const HOLDS: PreconditionCheck = { kind: 'holds' };

export function checkPrecondition(request: RemediationRequest, observed: Observation, rules: PreconditionRules, now: number): PreconditionCheck {
  if (observed.kind === 'node') {
    const node = nodeView(observed);
    const gone = node.status === 'terminating' || node.status === 'terminated';
    switch (request.action) {
      case 'cordon':
        return gone ? { kind: 'reject', detail: `node is ${node.status}` } : HOLDS;
      case 'drain':
        if (gone) return { kind: 'reject', detail: `node is ${node.status}` };
        // Without the list of pods there is nothing to evict one by one: the executor's drain runs as it is.
        if (node.pods === null || node.pods.length === 0) return HOLDS;
        return { kind: 'expand', detail: `${node.pods.length} pods on the node: cordon, then evict each through its workload's budget`, plan: drainPlan(request, node.pods, rules, now) };
      case 'terminate': {
        if (gone) return { kind: 'reject', detail: `node is already ${node.status}` };
        if (node.status === 'drained' && node.pods !== null && node.pods.length === 0 && node.drainsRunning === 0) return HOLDS;
        const detail = `node is not drained (status ${node.status}, ${node.pods === null ? 'pods unknown' : `${node.pods.length} pods`}, ${node.drainsRunning} drains running)`;
        if (rules.terminateUndrained === 'wait') return { kind: 'wait', detail };
        return { kind: 'expand', detail: `${detail}: draining it first`, plan: terminatePlan(request, rules, now) };
      }
    }
    return HOLDS;
  }
  if (observed.kind === 'deployment') {
    if (request.action === 'rollback' && Array.isArray(observed.state.history) && observed.state.history.length === 0) {
      return { kind: 'reject', detail: 'the deployment has no previous revision to roll back to' };
    }
    if (request.action === 'scale') {
      const target = Number(request.params.replicas);
      const current = Number(observed.state.replicas ?? observed.workload?.desired);
      const min = rules.minAvailableOf(observed);
      if (Number.isInteger(target) && target < current && min !== null && target < min) {
        return { kind: 'reject', detail: `scaling down to ${target} replicas leaves fewer than the ${min} the budget requires` };
      }
    }
  }
  return HOLDS;
}

/** What the executor reports about a node; a missing status or pod list never counts as "drained". */
function nodeView(observed: Observation): NodeView {
  const s = observed.state;
  return {
    status: typeof s.status === 'string' ? s.status : 'unknown',
    pods: Array.isArray(s.pods) ? s.pods.filter((p): p is string => typeof p === 'string') : null,
    drainsRunning: typeof s.drainsRunning === 'number' ? s.drainsRunning : 0,
  };
}

/**
 * cordon → one eviction per pod (in parallel, each after the cordon). The plan's id comes from the
 * request and the pods it covers: the same pods give the same plan on every re-evaluation; a pod
 * that landed on the node before the cordon gives a second plan for what is left.
 */
function drainPlan(request: RemediationRequest, podsOnNode: readonly string[], rules: PreconditionRules, now: number): ExpansionPlan {
  const pods = [...podsOnNode].sort();
  const planId = derivedId(`${request.requestId}/drain/${pods.join(',')}`);
  const steps: PlanStep[] = [
    { step: 0, requestId: derivedId(`${planId}/0`), action: 'cordon', resourceArn: request.resourceArn, params: {}, after: [] },
    // The node and plan in the params keep this eviction from being coalesced into an earlier one
    // of the same pod slot: that pod may since have been replaced onto this node, and is still here.
    ...pods.map((pod, i) => ({ step: i + 1, requestId: derivedId(`${planId}/${i + 1}`), action: 'evict', resourceArn: pod, params: { node: request.resourceArn, plan: planId }, after: [0] })),
  ];
  return expansion(request, planId, steps, `node drain ${request.requestId}: cordon, then evict ${pods.length} pods`, rules, now);
}

function terminatePlan(request: RemediationRequest, rules: PreconditionRules, now: number): ExpansionPlan {
  const planId = derivedId(`${request.requestId}/terminate`);
  const steps: PlanStep[] = [{ step: 0, requestId: derivedId(`${planId}/0`), action: 'drain', resourceArn: request.resourceArn, params: {}, after: [] }];
  return expansion(request, planId, steps, `terminate ${request.requestId}: drain the node first`, rules, now);
}

function expansion(request: RemediationRequest, planId: string, steps: PlanStep[], reason: string, rules: PreconditionRules, now: number): ExpansionPlan {
  return { planId, agentId: request.agentId, steps, deadline: request.deadline ?? now + rules.defaultPlanDeadlineMs, reason, parentRequestId: request.requestId };
}
