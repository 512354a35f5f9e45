import type pg from 'pg';
import { findInconsistencies } from '../../src/detect/index.ts';
import type { Fleet } from '../fleet/index.ts';
import { matchesMarker, type Marker } from './fleet-client.ts';

/**
 * Uncoordinated runs have no Arbiter, so nobody verified anything: the lab applies the detector's
 * rules to what the fleet reports of each of the scenario's resources at the end of the run, as
 * the detector would to that observation. Kinds that need Arbiter's own record (drift,
 * stale_observation) cannot be found this way; races that leave no lasting state (overlapping
 * restarts, a capacity dip, a terminate before its drain) cannot be found by any observation.
 */
export function findingsWithoutArbiter(fleet: Fleet, marker: Marker, windowMs: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of fleet.reportAll()) {
    if (!matchesMarker(o.resourceArn, marker)) continue;
    const observation = { ...o, observationId: 'race-lab', state: '{}', observedAt: Date.now() };
    const view = { lastVerified: null, decidedByArbiter: new Set<string>(), previous: null, conflictWindowMs: windowMs };
    for (const f of findInconsistencies(observation, view)) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
  }
  return counts;
}

/** Through Arbiter: what its detector recorded (arbiter.inconsistencies) on the scenario's resources since the run began. */
export async function findingsThroughArbiter(db: pg.Pool, marker: Marker, since: Date): Promise<Record<string, number>> {
  const { rows } = await db.query('SELECT resource_arn, kind FROM arbiter.inconsistencies WHERE detected_at >= $1 AND fingerprint IS NOT NULL', [since]);
  const counts: Record<string, number> = {};
  for (const r of rows) if (matchesMarker(r.resource_arn, marker)) counts[r.kind] = (counts[r.kind] ?? 0) + 1;
  return counts;
}
