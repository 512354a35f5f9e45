import type { Observation } from '../../src/index.ts';
import type { Violation } from '../fleet/index.ts';

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

  async versions(marker: string): Promise<Map<string, number>> {
    const body = (await (await fetch(`${this.url}/fleet`)).json()) as { resources: Array<{ arn: string; version: number }> };
    return new Map(body.resources.filter((r) => r.arn.includes(marker)).map((r) => [r.arn, r.version]));
  }

  async violations(marker: string): Promise<Violation[]> {
    const body = (await (await fetch(`${this.url}/violations`)).json()) as { violations: Violation[] };
    return body.violations.filter((v) => v.arn.includes(marker));
  }
}

/** Changes applied between two version snapshots. */
export function versionDelta(before: Map<string, number>, after: Map<string, number>): number {
  let total = 0;
  for (const [arn, version] of after) total += Math.max(0, version - (before.get(arn) ?? 1));
  return total;
}
