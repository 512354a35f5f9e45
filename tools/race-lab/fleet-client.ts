import type { Observation } from '../../src/index.ts';
import type { ExecutionRecord, Violation } from '../fleet/index.ts';

/** Substrings of ARNs: a resource belongs to a scenario when its ARN contains any of them. */
export type Marker = string | readonly string[];

export function matchesMarker(arn: string, marker: Marker): boolean {
  return typeof marker === 'string' ? arn.includes(marker) : marker.some((m) => arn.includes(m));
}

/** How agents and the lab see the simulated fleet: over HTTP, as they would see real infrastructure. */
export class FleetClient {
  constructor(readonly url: string) {}

  async act(body: { requestId: string; agentId: string; arn: string; action: string; params: Record<string, string> }): Promise<{ ok: boolean; code?: string; detail?: string }> {
    const res = await fetch(`${this.url}/actions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json = (await res.json()) as { ok: boolean; code?: string; detail?: string };
    return { ...json, ok: res.ok && json.ok };
  }

  async observe(arn: string): Promise<Observation> {
    return (await (await fetch(`${this.url}/resources?arn=${encodeURIComponent(arn)}`)).json()) as Observation;
  }

  async versions(marker: Marker): Promise<Map<string, number>> {
    const body = (await (await fetch(`${this.url}/fleet`)).json()) as { resources: Array<{ arn: string; version: number }> };
    return new Map(body.resources.filter((r) => matchesMarker(r.arn, marker)).map((r) => [r.arn, r.version]));
  }

  async violations(marker: Marker): Promise<Violation[]> {
    const body = (await (await fetch(`${this.url}/violations`)).json()) as { violations: Violation[] };
    return body.violations.filter((v) => matchesMarker(v.arn, marker));
  }

  /** Executions the fleet started (the last 100,000), oldest first; with a marker, on the ARNs it selects. */
  async executions(marker?: Marker): Promise<ExecutionRecord[]> {
    const query = new URLSearchParams();
    for (const m of typeof marker === 'string' ? [marker] : (marker ?? [])) query.append('marker', m);
    const body = (await (await fetch(`${this.url}/executions?${query}`)).json()) as { executions: ExecutionRecord[] };
    return body.executions;
  }
}

/** Changes applied between two version snapshots. */
export function versionDelta(before: Map<string, number>, after: Map<string, number>): number {
  let total = 0;
  for (const [arn, version] of after) total += Math.max(0, version - (before.get(arn) ?? 1));
  return total;
}
