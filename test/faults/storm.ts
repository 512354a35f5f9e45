import { expect } from 'vitest';
import type { RemediationRequest } from '../../src/contract/request.ts';
import { eventually, type TestEnv } from '../support/harness.ts';
import { finalsByRequest, readOutcomes } from '../support/outcomes.ts';
import { startStormEnv } from '../support/storm.ts';

/**
 * One storm of restarts over 20 deployments and two worker processes (the storm fleet and producer of
 * test/support/storm.ts), for the fault tests: half
 * sent, a fault while it is being worked off, the other half, and then the same pass criteria for
 * every fault. Outcomes are counted from the outcomes topic and the audit trail after the storm,
 * not through an SDK watcher, which would itself have to survive the fault.
 */

export interface Storm {
  env: TestEnv;
  requests: RemediationRequest[];
  /** The key (scope) request i is sent with. */
  keyOf(i: number): string;
  /** Sends requests[from, to). */
  send(from: number, to: number): Promise<void>;
  countFinal(): Promise<number>;
  /** Waits for the storm to be worked off, asserts the criteria and returns the measurements. */
  finish(label: string, fault: { startedAt: number; endedAt: number }): Promise<StormReport>;
  stop(): Promise<void>;
}

export interface StormReport {
  /** From the end of the fault to the first final decision recorded after it. */
  firstDecisionAfterMs: number;
  /** From the end of the fault until every request had its final outcome. */
  drainedAfterMs: number;
  /** Final decisions recorded while the fault lasted. */
  decidedDuringFault: number;
}

export async function startStorm(total: number): Promise<Storm> {
  // A short lease, so that if a worker did die the survivor would not wait 5 minutes for its locks.
  const fleet = await startStormEnv(20, { config: { deferral: { recheckMs: 100, maxDeferMs: 600_000 }, locks: { ttlMs: 5_000, reaperIntervalMs: 1_000 } } });
  const env = fleet.env;
  const requests = Array.from({ length: total }, (_, i) => fleet.restart(i, `agent-${i % 9}`));
  const countDeadLetters = async (): Promise<number> => {
    const { rows } = await env.db.query<{ n: number }>('SELECT count(*)::int AS n FROM arbiter.dead_letters');
    return rows[0]!.n;
  };
  const countFinal = async (): Promise<number> => {
    const { rows } = await env.db.query<{ n: number }>('SELECT count(*)::int AS n FROM arbiter.decisions WHERE final');
    return rows[0]!.n;
  };

  return {
    env,
    requests,
    keyOf: (i) => fleet.scope(i),
    countFinal,
    async send(from, to) {
      // Slices of 500: one produce request stays far below the broker's size limit.
      for (let i = from; i < to; i += 500) {
        await fleet.send(requests.slice(i, Math.min(to, i + 500)).map((request, k) => ({ key: fleet.scope(i + k), request })));
      }
    },
    async finish(label, fault) {
      // Worked off: each request decided, or dead-lettered (which fails below, with its reason).
      await eventually(async () => (await countFinal()) + (await countDeadLetters()) >= total, 240_000, `${total} final decisions (${label})`).catch(async (error: unknown) => {
        // A storm that stalls fails here: say where it stands, for whoever reads the failed run.
        console.log(await stallReport(env, total, label).catch((e: Error) => `${label}: no stall report (${e.message})`));
        throw error;
      });
      const drainedAt = Date.now();
      const { rows: dead } = await env.db.query('SELECT error_code, error, count(*)::int AS n FROM arbiter.dead_letters GROUP BY 1, 2');
      expect(dead, `dead letters (${label})`).toEqual([]);
      const { rows: after } = await env.db.query<{ at: Date | null; during: number }>(
        `SELECT min(decided_at) FILTER (WHERE decided_at > to_timestamp($1 / 1000.0)) AS at,
                count(*) FILTER (WHERE decided_at BETWEEN to_timestamp($2 / 1000.0) AND to_timestamp($1 / 1000.0))::int AS during
           FROM arbiter.decisions WHERE final`,
        [fault.endedAt, fault.startedAt],
      );
      const report: StormReport = {
        firstDecisionAfterMs: after[0]?.at ? after[0].at.getTime() - fault.endedAt : Number.NaN,
        drainedAfterMs: drainedAt - fault.endedAt,
        decidedDuringFault: after[0]?.during ?? 0,
      };
      console.log(
        `${label}: fault lasted ${fault.endedAt - fault.startedAt} ms; ${report.decidedDuringFault} final decisions during it; ` +
          `first final decision ${report.firstDecisionAfterMs} ms after it ended; storm of ${total} drained ${report.drainedAfterMs} ms after it ended`,
      );

      const executions = env.sim.fleet.stats().executions.restart;
      const violations = env.sim.fleet.violations().counts;
      console.log(`${label}: ${executions} restarts executed for ${total} requests; fleet violations ${JSON.stringify(violations)}`);
      for (const v of env.sim.fleet.violations().violations.filter((x) => x.kind === "duplicate_execution")) console.log("DUP", JSON.stringify(v));
      // Both worker processes still running, never a crashed consumer.
      expect(env.workers.map((w) => w.running())).toEqual([true, true]);
      for (const w of env.workers) expect(w.output()).not.toMatch(/Unhandled 'error' event|consumer crashed/);
      // Every request exactly one final decision in the audit trail.
      const { rows } = await env.db.query('SELECT count(*)::int AS n, count(DISTINCT request_id)::int AS distinct_ids FROM arbiter.decisions WHERE final');
      expect(rows[0]).toEqual({ n: total, distinct_ids: total });
      // Every request at least one final outcome on the topic, all of them the same answer. Outcomes
      // are published at least once (outbox), so a repeat is allowed and counted, a miss is not.
      let finals = finalsByRequest(await readOutcomes(env.prefix, 60_000));
      for (let attempt = 0; requests.some((r) => !finals.has(r.requestId)) && attempt < 3; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        finals = finalsByRequest(await readOutcomes(env.prefix, 60_000));
      }
      const unanswered = requests.filter((r) => !finals.has(r.requestId));
      if (unanswered.length > 0) {
        // What the audit trail knows of them: recorded as published, by which partition, when.
        const { rows: known } = await env.db.query(
          `SELECT s.request_id, s.kafka_partition, s.final, o.request_id IS NULL AS published, s.finished_at
             FROM arbiter.request_state s LEFT JOIN arbiter.outcome_outbox o USING (request_id) WHERE s.request_id = ANY($1::uuid[]) LIMIT 10`,
          [unanswered.map((r) => r.requestId)],
        );
        console.log(`${label}: ${unanswered.length} requests without a final outcome on the topic; e.g. ${JSON.stringify(known)}`);
      }
      const repeated = [...finals.values()].filter((answers) => answers.length > 1).length;
      console.log(`${label}: final outcomes on the topic: ${finals.size} requests answered, ${repeated} answered more than once`);
      expect(unanswered.map((r) => r.requestId)).toEqual([]);
      expect([...finals.values()].filter((answers) => new Set(answers.map((o) => o.status)).size > 1).length).toBe(0);
      expect([...finals.values()].flat().filter((o) => o.status !== 'EXECUTED').map((o) => `${o.status}: ${o.detail}`)).toEqual([]);
      // Nothing executed twice.
      expect(violations.duplicate_execution ?? 0).toBe(0);
      expect(executions).toBe(total);
      return report;
    },
    stop: () => fleet.stop(),
  };
}

/** Where a stalled storm stands: requests received or not, the open ones by partition and status, each worker's last words. */
async function stallReport(env: TestEnv, total: number, label: string): Promise<string> {
  const { rows: received } = await env.db.query<{ state: number; duplicates: number }>(
    'SELECT (SELECT count(*)::int FROM arbiter.request_state) AS state, (SELECT count(*)::int FROM arbiter.duplicates) AS duplicates',
  );
  const { rows: open } = await env.db.query<{ kafka_partition: number; status: string; n: number; oldest: Date }>(
    `SELECT kafka_partition, status, count(*)::int AS n, min(received_at) AS oldest
       FROM arbiter.request_state WHERE NOT final GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  const workers = env.workers.map((w) => `${w.id} (${w.running() ? 'running' : 'exited'}):\n${w.output().split('\n').slice(-30).join('\n')}`);
  return [
    `${label}: stalled. Received ${received[0]!.state} working-state rows and ${received[0]!.duplicates} duplicates of ${total} requests.`,
    `open requests by partition and status: ${JSON.stringify(open.map((r) => [r.kafka_partition, r.status, r.n, r.oldest.toISOString()]))}`,
    ...workers,
  ].join('\n');
}
