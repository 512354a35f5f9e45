import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runArbiterCli } from '../support/cli.ts';
import { eventually, startTestEnv, type TestEnv } from '../support/harness.ts';
import { scrape, total, type Sample } from '../support/metrics-text.ts';

const ARNS = [1, 2, 3].map((i) => `arn:sim:k8s:local:000000000000:cluster/prod/node/contended-${i}`);
const OVERRUN = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/api/pod/overrun-0';
const AGENTS = Array.from({ length: 20 }, (_, i) => `agent-${String(i + 1).padStart(2, '0')}`);
const FAILURES = 'arbiter_lock_acquire_failures_total';
const EXPIRATIONS = 'arbiter_lock_ttl_expirations_total';

/** Runs `jobs` with at most `limit` at once (CLI processes on 2 cores). */
async function pooled<T>(jobs: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await jobs[i]!();
      }
    }),
  );
  return results;
}

/**
 * The lock-log signals count every path that takes Arbiter's locks: here 20 agents contend through
 * `arbiter lock acquire` alone, straight to PostgreSQL, and no worker has any part in their
 * decisions. The workers' /metrics, summed, still equal the lock log, because one worker at a
 * time exports counters brought up to date from the log itself.
 */
describe('lock acquisition failures and TTL expirations, counted from the lock log', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await startTestEnv({ workers: 2, config: { worker: { lockLogMetricsMs: 300 }, locks: { reaperIntervalMs: 300 } } });
  });
  afterAll(async () => {
    await env?.stop();
  });

  const acquire = (agent: string, arn: string, ttlSeconds = 60) =>
    runArbiterCli(['lock', 'acquire', '--arn', arn, '--agent', agent, '--ttl', String(ttlSeconds), '--json'], env.cliEnv);

  const rows = async (event: string): Promise<number> =>
    Number((await env.db.query('SELECT count(*)::int AS n FROM arbiter.lock_events WHERE event = $1', [event])).rows[0].n);

  const scrapeAll = async (): Promise<Sample[][]> => Promise.all(env.workers.filter((w) => w.running()).map((w) => scrape(w.metricsUrl)));
  const summed = (pages: Sample[][], name: string, where: Record<string, string> = {}) => pages.reduce((sum, page) => sum + total(page, name, where), 0);

  it('20 agents through `arbiter lock acquire` only: the failures summed over the workers equal the acquire_failed rows', async () => {
    // Round 1: each agent takes one of 3 locks (held 60 s); round 2: each tries another one.
    const jobs = AGENTS.flatMap((agent, i) => [() => acquire(agent, ARNS[i % 3]!), () => acquire(agent, ARNS[(i + 1) % 3]!)]);
    const round1 = await pooled(jobs.filter((_, j) => j % 2 === 0), 8);
    const round2 = await pooled(jobs.filter((_, j) => j % 2 === 1), 8);
    const results = [...round1, ...round2];
    expect(results.every((r) => r.code === 0 || r.code === 4), results.map((r) => r.stderr).join('\n')).toBe(true);
    const acquired = results.filter((r) => r.code === 0).length;
    expect(acquired).toBe(3);
    expect(results.filter((r) => r.code === 4)).toHaveLength(37);

    // Workers made no lock decision: every row is an agent's.
    const owners = await env.db.query(`SELECT DISTINCT owner FROM arbiter.lock_events WHERE owner NOT LIKE 'agent:%'`);
    expect(owners.rows).toEqual([]);
    expect(await rows('acquire_failed')).toBe(37);

    const pages = await eventually(async () => {
      const p = await scrapeAll();
      return summed(p, FAILURES) === 37 ? p : null;
    }, 20_000, `sum(${FAILURES}) over the workers = 37`);

    // Exactly one worker exports the lock-log series; the other exports none of them.
    const exporters = pages.filter((p) => total(p, 'arbiter_lock_log_exporter') === 1);
    expect(exporters).toHaveLength(1);
    const quiet = pages.find((p) => total(p, 'arbiter_lock_log_exporter') === 0)!;
    expect(quiet.filter((s) => s.name === FAILURES || s.name === EXPIRATIONS)).toEqual([]);

    // By waiting agent and resource type, as the lock log has them.
    const byAgent = await env.db.query(
      `SELECT agent_id, count(*)::int AS n FROM arbiter.lock_events WHERE event = 'acquire_failed' GROUP BY agent_id ORDER BY agent_id`,
    );
    for (const { agent_id: agent, n } of byAgent.rows) expect(summed(pages, FAILURES, { agent, resource_type: 'node' }), agent).toBe(n);
    // `arbiter audit contention --json` names the same races by agent pair (who held, who waited).
    const report = await runArbiterCli(['audit', 'contention', '--json'], env.cliEnv);
    expect(report.code, report.stderr).toBe(0);
    const { byPair } = JSON.parse(report.stdout) as { byPair: Array<{ holding: string; waiting: string; failedAcquires: number }> };
    const pairs = await env.db.query(
      `SELECT holder_agent AS holding, agent_id AS waiting, count(*)::int AS n FROM arbiter.lock_events WHERE event = 'acquire_failed' GROUP BY 1, 2`,
    );
    expect(byPair.map((p) => `${p.holding} > ${p.waiting}: ${p.failedAcquires}`).sort()).toEqual(pairs.rows.map((r) => `${r.holding} > ${r.waiting}: ${r.n}`).sort());
    expect(byPair.reduce((n, p) => n + p.failedAcquires, 0)).toBe(37);
    console.log(
      `lock signals: ${results.length} CLI acquires by ${AGENTS.length} agents, ${acquired} acquired, ` +
        `acquire_failed rows ${await rows('acquire_failed')}, sum(${FAILURES}) ${summed(pages, FAILURES)}`,
    );
  });

  it('a lock left to expire is counted once, with the agent that overran', async () => {
    expect((await acquire('slow-agent', OVERRUN, 1)).code).toBe(0);
    await eventually(async () => (await rows('expired')) === 1, 20_000, 'the reaper to record the expiry');
    const pages = await eventually(async () => {
      const p = await scrapeAll();
      return summed(p, EXPIRATIONS) === 1 ? p : null;
    }, 20_000, `sum(${EXPIRATIONS}) = 1`);
    expect(summed(pages, EXPIRATIONS, { agent: 'slow-agent', resource_type: 'pod' })).toBe(1);
  });

  it('when the exporting worker stops, the other takes over from the log: the sum still equals the rows', async () => {
    const pages = await Promise.all(env.workers.map(async (w) => ({ w, page: await scrape(w.metricsUrl) })));
    const exporter = pages.find((p) => total(p.page, 'arbiter_lock_log_exporter') === 1)!.w;
    await exporter.stop('SIGTERM');
    // More contention while the handover happens.
    const more = await pooled(AGENTS.slice(0, 5).map((agent) => () => acquire(agent, ARNS[2]!)), 5);
    expect(more.filter((r) => r.code === 4).length).toBeGreaterThanOrEqual(4);
    const expected = await rows('acquire_failed');
    expect(expected).toBeGreaterThanOrEqual(41);
    const after = await eventually(async () => {
      const p = await scrapeAll();
      return p.length === 1 && summed(p, FAILURES) === expected ? p : null;
    }, 20_000, `the surviving worker to export ${expected} failures`);
    expect(total(after[0]!, 'arbiter_lock_log_exporter')).toBe(1);
    expect(summed(after, EXPIRATIONS)).toBe(await rows('expired'));
  });
});
