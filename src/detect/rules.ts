import type { ObservedChange, ResourceObservation } from '../contract/observation.ts';

export const FINDING_KINDS = ['drift', 'lost_change', 'conflicting_commits', 'stale_observation', 'unexpected_version'] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

/** One inconsistency, with what it rests on. Its fingerprint makes it be recorded once. */
export interface Finding {
  kind: FindingKind;
  resourceArn: string;
  fingerprint: string;
  detail: string;
  requestIds: string[];
  evidence: {
    agents: string[];
    versions: Record<string, number | null>;
    observationIds: string[];
    [more: string]: unknown;
  };
}

/** What Arbiter knows about the resource when an observation of it arrives. */
export interface ArbiterView {
  /** Arbiter's last verified change to the resource (resource_state), if any. */
  lastVerified: { version: number; requestId: string; action: string; agentId: string } | null;
  /** Which of the request ids the observation names Arbiter decided (request_state). */
  decidedByArbiter: ReadonlySet<string>;
  /** The previous observation of the resource (observed_state), if any. */
  previous: { observationId: string; version: number | null; effectiveRequestIds: string[] | null } | null;
  conflictWindowMs: number;
}

/** Changes whose effect persists and can be undone by a later one: these can be lost or conflict. */
const PERSISTENT = new Set(['hotfix', 'deploy', 'rollback', 'scale']);
/** Changes that add to what runs and stay in effect until a later change removes them: they can be lost. */
const ADDITIVE = new Set(['hotfix']);

/**
 * The findings one observation supports, pure. Each rule needs only what an executor reports
 * (docs/DETECTION.md says which fields); a rule whose fields are absent finds nothing.
 */
export function findInconsistencies(o: ResourceObservation, view: ArbiterView): Finding[] {
  return [...drift(o, view), ...lostChanges(o, view), ...conflictingCommits(o, view)];
}

/**
 * drift: the resource changed after Arbiter's last verified change, by a change Arbiter never
 * decided (kubectl, an agent going around Arbiter).
 */
function drift(o: ResourceObservation, view: ArbiterView): Finding[] {
  const last = view.lastVerified;
  if (!last) return [];
  const foreign = o.recentChanges.filter((c) => c.version > last.version && !view.decidedByArbiter.has(c.requestId));
  return foreign.map((c) => ({
    kind: 'drift',
    resourceArn: o.resourceArn,
    fingerprint: `drift:${o.resourceArn}:${c.requestId}`,
    detail: `${c.action} by ${c.agentId ?? 'someone unknown'} changed the resource to version ${c.version} after Arbiter's last verified change (${last.action} ${last.requestId}, version ${last.version}), without Arbiter`,
    requestIds: [last.requestId],
    evidence: {
      agents: [c.agentId ?? 'unknown', last.agentId],
      versions: { arbiter: last.version, observed: o.version, change: c.version },
      observationIds: [o.observationId],
      change: c,
    },
  }));
}

/**
 * lost_change: a change that was in effect (in the previous observation, or Arbiter's last verified
 * one) is no longer, and the change that removed it was not based on a version that included it.
 */
function lostChanges(o: ResourceObservation, view: ArbiterView): Finding[] {
  if (o.effectiveRequestIds === null) return [];
  const now = new Set(o.effectiveRequestIds);
  // What was in effect at some point: the previous observation's, Arbiter's last verified change,
  // and the hotfixes the observer lists among its recent changes (so one missed
  // observation does not hide a loss).
  const before = new Set(view.previous?.effectiveRequestIds ?? []);
  if (view.lastVerified && ADDITIVE.has(view.lastVerified.action)) before.add(view.lastVerified.requestId);
  for (const c of o.recentChanges) if (ADDITIVE.has(c.action)) before.add(c.requestId);
  const findings: Finding[] = [];
  for (const lost of before) {
    if (now.has(lost)) continue;
    const made = o.recentChanges.find((c) => c.requestId === lost);
    const madeVersion = made?.version ?? (view.lastVerified?.requestId === lost ? view.lastVerified.version : null);
    if (madeVersion === null) continue; // Too old to judge: the observer no longer lists it.
    const remover = o.recentChanges.find((c) => c.version > madeVersion && PERSISTENT.has(c.action));
    if (!remover) continue;
    // Arbiter decided the remover: its stale and conflict rules already judged it against this change.
    if (view.decidedByArbiter.has(remover.requestId)) continue;
    // The remover knew about it (based on a version that had it): an intended undo, not a loss.
    if (remover.basedOnVersion !== null && remover.basedOnVersion >= madeVersion) continue;
    findings.push({
      kind: 'lost_change',
      resourceArn: o.resourceArn,
      fingerprint: `lost_change:${lost}`,
      detail: `${made?.action ?? view.lastVerified?.action} ${lost} (version ${madeVersion}) is no longer in effect: ${remover.action} ${remover.requestId} by ${remover.agentId ?? 'someone unknown'} removed it${remover.basedOnVersion === null ? ' without saying what it was based on' : `, based on version ${remover.basedOnVersion}`}`,
      requestIds: [lost, remover.requestId].filter((id) => view.decidedByArbiter.has(id)),
      evidence: {
        agents: [made?.agentId ?? view.lastVerified?.agentId ?? 'unknown', remover.agentId ?? 'unknown'],
        versions: { lost: madeVersion, removedBy: remover.version, basedOn: remover.basedOnVersion, observed: o.version },
        observationIds: [view.previous?.observationId, o.observationId].filter((id): id is string => Boolean(id)),
        lostRequestId: lost,
        removedBy: remover,
      },
    });
  }
  return findings;
}

/**
 * conflicting_commits: two changes by different agents committed to one resource within the
 * conflict window, the second based on a version from before the first (it could not have seen it).
 */
function conflictingCommits(o: ResourceObservation, view: ArbiterView): Finding[] {
  const changes = o.recentChanges.filter((c) => PERSISTENT.has(c.action));
  const findings: Finding[] = [];
  for (let i = 1; i < changes.length; i++) {
    const second = changes[i]!;
    if (second.basedOnVersion === null) continue;
    for (let j = i - 1; j >= 0; j--) {
      const first = changes[j]!;
      if (second.at - first.at > view.conflictWindowMs) break;
      if (first.agentId === second.agentId || second.basedOnVersion >= first.version) continue;
      // Both decided by Arbiter: it ordered them itself (stale and conflict rules).
      if (view.decidedByArbiter.has(first.requestId) && view.decidedByArbiter.has(second.requestId)) continue;
      findings.push(conflictFinding(o, view, first, second));
    }
  }
  return findings;
}

function conflictFinding(o: ResourceObservation, view: ArbiterView, first: ObservedChange, second: ObservedChange): Finding {
  return {
    kind: 'conflicting_commits',
    resourceArn: o.resourceArn,
    fingerprint: `conflicting_commits:${first.requestId}:${second.requestId}`,
    detail: `${second.action} by ${second.agentId ?? 'someone unknown'} (based on version ${second.basedOnVersion}) was committed ${second.at - first.at} ms after ${first.action} by ${first.agentId ?? 'someone unknown'} (version ${first.version}), which it could not have seen`,
    requestIds: [first.requestId, second.requestId].filter((id) => view.decidedByArbiter.has(id)),
    evidence: {
      agents: [first.agentId ?? 'unknown', second.agentId ?? 'unknown'],
      versions: { first: first.version, second: second.version, secondBasedOn: second.basedOnVersion },
      observationIds: [o.observationId],
      changes: [first, second],
    },
  };
}
