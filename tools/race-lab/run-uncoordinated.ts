import { randomUUID } from 'node:crypto';
import { FleetClient, versionDelta } from './fleet-client.ts';
import { countBy, percentiles, type RunResult } from './results.ts';
import type { Scenario } from './scenarios.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Agents act on the fleet directly, each on its own schedule and its own picture of the world —
 * what happens today without Arbiter. A plan's later step does not wait for its earlier one.
 */
export async function runUncoordinated(scenario: Scenario, fleet: FleetClient, onRequest: () => void): Promise<RunResult> {
  for (const step of scenario.setup ?? []) await fleet.act({ requestId: randomUUID(), agentId: 'lab-setup', ...step });
  const before = await fleet.versions(scenario.marker);
  const started = Date.now();
  const results = await Promise.all(
    scenario.intents.map(async (intent) => {
      const params = { ...intent.params };
      if (intent.basedOnObservedVersion) params.basedOnVersion = String((await fleet.observe(intent.arn)).version);
      await sleep(intent.atMs ?? 0);
      const t0 = Date.now();
      const result = await fleet.act({ requestId: randomUUID(), agentId: intent.agentId, arn: intent.arn, action: intent.action, params });
      onRequest();
      return { ok: result.ok, ms: Date.now() - t0 };
    }),
  );
  const after = await fleet.versions(scenario.marker);
  const violations = await fleet.violations(scenario.marker);
  const byKind = countBy(violations, (v) => v.kind);
  return {
    scenario: scenario.name,
    title: scenario.title,
    mode: 'uncoordinated',
    requests: results.length,
    executions: versionDelta(before, after),
    coalesced: 0,
    rejected: {},
    deferred: 0,
    failed: results.filter((r) => !r.ok).length,
    expired: 0,
    violations: byKind,
    violationsTotal: violations.length,
    // Filled in by the lab once the run is over (findings.ts).
    findings: {},
    decisionLatencyMs: null,
    outcomeLatencyMs: percentiles(results.map((r) => r.ms)),
    missingOutcomes: 0,
    duplicateFinals: 0,
    durationMs: Date.now() - started,
  };
}
