import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterLocks, type ArbiterClient } from '../../src/agent-sdk/index.ts';
import { signedFetch } from '../../src/executor/index.ts';
import { eventually, freePort, startTestEnv, type TestEnv } from '../support/harness.ts';

/** Debian's prometheus package (scripts/install-system-deps.sh). Missing, the test fails: it is never skipped. */
const PROMETHEUS = '/usr/bin/prometheus';
const RULES = fileURLToPath(new URL('../../helm/arbiter/files/prometheus/arbiter-rules.yaml', import.meta.url));
const DASHBOARD = fileURLToPath(new URL('../../helm/arbiter/files/grafana/arbiter-dashboard.json', import.meta.url));

const NODE = 'arn:sim:k8s:local:000000000000:cluster/prod/node/prom-race-1';
const OVERRUN = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/worker/pod/overrun-0';
const API_POD = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/api/pod/api-0';
const WEB_POD = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/checkout/deployment/web/pod/web-0';

interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/**
 * A real Prometheus (the Debian binary) scrapes two worker processes every second while a race
 * happens: agents contend for a lock through the SDK (and one through a worker), a short-TTL lock
 * is never released, and a resource is changed behind Arbiter's back before Arbiter acts on it.
 * Prometheus' HTTP API then shows the three signals with the values the audit trail holds.
 */
describe('a real Prometheus scraping two workers sees the three signals the audit trail holds', () => {
  let env: TestEnv;
  let dir: string;
  let prometheus: ChildProcess | undefined;
  let promUrl: string;
  let promLog = '';
  const locks: ArbiterLocks[] = [];
  let client: ArbiterClient;

  beforeAll(async () => {
    if (!existsSync(PROMETHEUS)) {
      throw new Error(`${PROMETHEUS} is missing: install Debian's prometheus package (bash scripts/install-system-deps.sh)`);
    }
    env = await startTestEnv({
      workers: 2,
      config: { worker: { lockLogMetricsMs: 300, lagRefreshMs: 1_000 }, locks: { reaperIntervalMs: 300, retryMs: 300 } },
    });
    client = await env.client('remediator');

    dir = mkdtempSync(join(tmpdir(), 'arbiter-prometheus-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const targets = env.workers.map((w) => new URL(w.metricsUrl).host);
    writeFileSync(
      join(dir, 'prometheus.yml'),
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [RULES],
        scrape_configs: [{ job_name: 'arbiter', static_configs: [{ targets }] }],
      }),
    );
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    for (const stream of [prometheus.stdout!, prometheus.stderr!]) stream.on('data', (chunk: Buffer) => (promLog = (promLog + chunk.toString()).slice(-20_000)));
    await eventually(
      async () => {
        if (prometheus!.exitCode !== null) throw new Error(`prometheus exited with ${prometheus!.exitCode}: ${promLog}`);
        return (await fetch(`${promUrl}/-/ready`)).ok;
      },
      30_000,
      'prometheus to be ready',
    );
    // Both workers scraped before the race starts.
    await eventually(async () => (await query('sum(up{job="arbiter"})'))[0]?.value[1] === '2', 30_000, 'prometheus to scrape both workers');
  });

  afterAll(async () => {
    await Promise.all(locks.map((l) => l.close()));
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    await env?.stop();
  });

  async function query(promql: string): Promise<PromSample[]> {
    const response = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as { status: string; error?: string; data: { result: PromSample[] } };
    if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
    return body.data.result;
  }
  const scalar = async (promql: string): Promise<number> => Number((await query(promql))[0]?.value[1] ?? NaN);
  const count = async (sql: string): Promise<number> => Number((await env.db.query(sql)).rows[0].n);

  it('runs the race: contention, a TTL expiration, a change behind Arbiter’s back', async () => {
    const agent = (id: string) => {
      const l = new ArbiterLocks(env.databaseUrl, id);
      locks.push(l);
      return l;
    };
    // 1. Eight agents race for one lock through the SDK, three rounds; the winner holds it.
    const racers = Array.from({ length: 8 }, (_, i) => agent(`racer-${i + 1}`));
    for (let round = 0; round < 3; round++) {
      await Promise.all(racers.map((l) => l.acquire(NODE, 30_000)));
      await new Promise((r) => setTimeout(r, 200));
    }
    // 2. A worker waits too: an agent holds a pod's lock while a restart for it goes through Arbiter.
    const carol = agent('sre-carol');
    const held = await carol.acquire(WEB_POD, 30_000);
    expect(held.acquired).toBe(true);
    const restart = client.submitAndWait({ agentId: 'remediator', resourceArn: WEB_POD, action: 'restart', params: { why: 'prometheus-test' } }, { timeoutMs: 60_000 });
    await eventually(
      async () => (await count(`SELECT count(*) AS n FROM arbiter.lock_events WHERE event = 'acquire_failed' AND owner LIKE 'worker:%'`)) >= 2,
      30_000,
      'a worker to be refused the lock',
    );
    if (held.acquired) await carol.release(WEB_POD, held.fencingToken);
    expect((await restart).status).toBe('EXECUTED');

    // 3. A lock with a 1 s TTL, never released: the reaper records the expiry.
    expect((await agent('slow-agent').acquire(OVERRUN, 1_000)).acquired).toBe(true);
    await eventually(async () => (await count(`SELECT count(*) AS n FROM arbiter.lock_events WHERE event = 'expired'`)) === 1, 20_000, 'the expiry');

    // 4. Arbiter restarts a pod; someone restarts it again behind Arbiter's back; the next request
    //    through Arbiter observes a version Arbiter did not commit: unexpected_version.
    expect((await client.submitAndWait({ agentId: 'remediator', resourceArn: API_POD, action: 'restart', params: { n: '1' } }, { timeoutMs: 60_000 })).status).toBe('EXECUTED');
    const outside = await signedFetch(env.executorHmacKey, `${env.sim.url}/out-of-band`, {
      method: 'POST',
      body: JSON.stringify({ arn: API_POD, action: 'restart', agentId: 'person:kubectl' }),
    });
    expect(outside.status).toBe(200);
    expect((await client.submitAndWait({ agentId: 'remediator', resourceArn: API_POD, action: 'restart', params: { n: '2' } }, { timeoutMs: 60_000 })).status).toBe('EXECUTED');
    await eventually(
      async () => (await count(`SELECT count(*) AS n FROM arbiter.inconsistencies WHERE kind = 'unexpected_version'`)) >= 1,
      20_000,
      'the unexpected_version row',
    );
  });

  it('Prometheus holds what the audit trail holds: lock_events rows, arbiter.inconsistencies rows', async () => {
    const failed = await count(`SELECT count(*) AS n FROM arbiter.lock_events WHERE event = 'acquire_failed'`);
    const expired = await count(`SELECT count(*) AS n FROM arbiter.lock_events WHERE event = 'expired'`);
    const inconsistent = await count(`SELECT count(*) AS n FROM arbiter.inconsistencies`);
    expect(failed).toBeGreaterThanOrEqual(23);
    expect(expired).toBe(1);
    expect(inconsistent).toBeGreaterThanOrEqual(1);

    const seen = await eventually(
      async () => {
        const values = {
          failed: await scalar('sum(arbiter_lock_acquire_failures_total)'),
          expired: await scalar('sum(arbiter_lock_ttl_expirations_total)'),
          inconsistent: await scalar('sum(arbiter_inconsistencies_total)'),
        };
        return values.failed === failed && values.expired === expired && values.inconsistent === inconsistent ? values : null;
      },
      30_000,
      `Prometheus to show ${failed} acquire failures, ${expired} expiry, ${inconsistent} inconsistencies`,
    );
    console.log(`prometheus: sum over 2 workers = ${JSON.stringify(seen)}; audit trail: acquire_failed ${failed}, expired ${expired}, inconsistencies ${inconsistent}`);

    // By label, too: the agents that waited (workers' refusals carry the request's agent), the
    // agent that overran, each kind of finding.
    const byAgent = (await env.db.query(`SELECT coalesce(agent_id, owner) AS agent, count(*)::int AS n FROM arbiter.lock_events WHERE event = 'acquire_failed' GROUP BY 1`)).rows;
    const promByAgent = new Map((await query('sum by (agent) (arbiter_lock_acquire_failures_total)')).map((s) => [s.metric.agent, Number(s.value[1])]));
    expect(Object.fromEntries(promByAgent)).toEqual(Object.fromEntries(byAgent.map((r) => [r.agent, r.n])));
    expect(promByAgent.get('remediator')).toBeGreaterThanOrEqual(2);
    expect(await query('arbiter_lock_ttl_expirations_total')).toMatchObject([{ metric: { agent: 'slow-agent', resource_type: 'pod' }, value: [expect.any(Number), '1'] }]);
    const kinds = (await env.db.query(`SELECT kind, count(*)::int AS n FROM arbiter.inconsistencies GROUP BY kind`)).rows;
    for (const { kind, n } of kinds) expect(await scalar(`sum(arbiter_inconsistencies_total{kind="${kind}"})`), kind).toBe(n);

    // One worker exported the lock-log series; both exported consumer lag for the partitions they own.
    expect(await query('count by (instance) (arbiter_lock_acquire_failures_total)')).toHaveLength(1);
    expect(await scalar('sum(arbiter_lock_log_exporter)')).toBe(1);
    expect(await scalar('count(arbiter_consumer_lag)')).toBe(6);
    expect(await query('count by (instance) (arbiter_consumer_lag)')).toHaveLength(2);
  });

  it('loads the shipped alert rules; the inconsistency alert fires', async () => {
    const rules = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string }> }> };
    };
    const all = rules.data.groups.flatMap((g) => g.rules);
    expect(all.length).toBe(8);
    for (const r of all) expect(r.health, `${r.name}: ${r.lastError ?? ''}`).toBe('ok');
    const alerts = await eventually(
      async () => {
        const body = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } };
        const found = body.data.alerts.filter((a) => a.labels.alertname === 'ArbiterInconsistentState' && a.state === 'firing');
        return found.length ? found : null;
      },
      20_000,
      'ArbiterInconsistentState to fire',
    );
    expect(alerts.map((a) => a.labels.kind)).toContain('unexpected_version');
  });

  it('every query of the shipped dashboard runs', async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    for (const { panel, expr } of exprs) {
      const promql = expr.replaceAll('$__rate_interval', '10s').replaceAll('$__range', '5m');
      await expect(query(promql), `${panel}: ${promql}`).resolves.toBeInstanceOf(Array);
    }
    // The inconsistency series started at 0 before the finding: the increase is visible.
    expect(await scalar('sum(increase(arbiter_inconsistencies_total[5m]))')).toBeGreaterThan(0);
  });
});
