import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { ArbiterClient, RemediationOutcome } from '../../src/index.ts';
import { FleetClient, versionDelta } from './fleet-client.ts';
import { countBy, percentiles, type RunResult } from './results.ts';
import type { Scenario } from './scenarios.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The same agents, the same schedule, but every change goes through Arbiter: they submit requests
 * and wait for outcomes. Plan steps name the step they depend on.
 */
export async function runArbitrated(
  scenario: Scenario,
  fleet: FleetClient,
  clients: ArbiterClient[],
  db: pg.Pool,
  onRequest: () => void,
  timeoutMs = 120_000,
): Promise<RunResult> {
  for (const step of scenario.setup ?? []) await fleet.act({ requestId: randomUUID(), agentId: 'lab-setup', ...step });
  const before = await fleet.versions(scenario.marker);
  const ids = scenario.intents.map(() => randomUUID());
  const deferred = new Set<string>();
  const started = Date.now();
  const results = await Promise.all(
    scenario.intents.map(async (intent, i): Promise<{ outcome: RemediationOutcome | null; ms: number }> => {
      const client = clients[i % clients.length]!;
      const params = { ...intent.params };
      let expectedVersion: number | null = null;
      if (intent.basedOnObservedVersion) {
        expectedVersion = (await fleet.observe(intent.arn)).version;
        params.basedOnVersion = String(expectedVersion);
      }
      await sleep(intent.atMs ?? 0);
      const t0 = Date.now();
      await client.submit({
        requestId: ids[i],
        agentId: intent.agentId,
        resourceArn: intent.arn,
        action: intent.action,
        params,
        expectedVersion,
        dependsOn: intent.after !== undefined ? [ids[intent.after]!] : [],
        incidentId: intent.incidentId ?? null,
      });
      try {
        const outcome = await client.awaitOutcome(ids[i]!, { timeoutMs, onProgress: (o) => o.status === 'DEFERRED' && deferred.add(o.requestId) });
        return { outcome, ms: Date.now() - t0 };
      } catch {
        return { outcome: null, ms: Date.now() - t0 };
      } finally {
        onRequest();
      }
    }),
  );
  const after = await fleet.versions(scenario.marker);
  const violations = await fleet.violations(scenario.marker);
  const outcomes = results.flatMap((r) => (r.outcome ? [r.outcome] : []));
  const audit = await auditCheck(db, ids);
  return {
    scenario: scenario.name,
    title: scenario.title,
    mode: 'arbiter',
    requests: ids.length,
    executions: versionDelta(before, after),
    coalesced: outcomes.filter((o) => o.status === 'COALESCED').length,
    rejected: countBy(outcomes, (o) => (o.status.startsWith('REJECTED_') ? o.status.slice('REJECTED_'.length).toLowerCase() : null)),
    deferred: deferred.size,
    failed: outcomes.filter((o) => o.status === 'FAILED').length,
    expired: outcomes.filter((o) => o.status === 'EXPIRED').length,
    violations: countBy(violations, (v) => v.kind),
    violationsTotal: violations.length,
    // Filled in by the lab once the run is over (findings.ts).
    findings: {},
    decisionLatencyMs: audit.decisionLatency,
    outcomeLatencyMs: percentiles(results.map((r) => r.ms)),
    missingOutcomes: ids.filter((id, i) => !results[i]!.outcome || !audit.finalIds.has(id)).length,
    duplicateFinals: audit.duplicateFinals,
    durationMs: Date.now() - started,
  };
}

/** Cross-checks the agents' view with the audit trail: one final decision per request, no more. */
async function auditCheck(db: pg.Pool, ids: string[]) {
  const finals = await db.query(
    'SELECT request_id, count(*)::int AS n FROM arbiter.decisions WHERE final AND request_id = ANY($1::uuid[]) GROUP BY 1',
    [ids],
  );
  const first = await db.query(
    'SELECT DISTINCT ON (request_id) latency_ms FROM arbiter.decisions WHERE request_id = ANY($1::uuid[]) ORDER BY request_id, decided_at',
    [ids],
  );
  return {
    finalIds: new Set(finals.rows.map((r) => r.request_id as string)),
    duplicateFinals: finals.rows.filter((r) => r.n > 1).length,
    decisionLatency: percentiles(first.rows.map((r) => Number(r.latency_ms))),
  };
}
