import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterLocks, type ArbiterClient } from '../../src/agent-sdk/index.ts';
import { signedFetch } from '../../src/executor/index.ts';
import { deploymentArn, podArn } from '../../tools/fleet/index.ts';
import { eventually, startTestEnv, type TestEnv } from '../support/harness.ts';

const THROUGH = deploymentArn('ok', 'through-arbiter');
const DRIFTED = deploymentArn('ops', 'drifted');
const HOTFIXED = deploymentArn('shop', 'hotfixed');
const RACED = deploymentArn('pay', 'raced');
const FLEET = {
  deployments: [THROUGH, DRIFTED, HOTFIXED, RACED].map((arn) => {
    const [, namespace, , name] = arn.split('/').slice(-4);
    return { namespace: namespace!, name: name!, replicas: 2, minAvailable: 1, revision: 'v1' };
  }),
  nodes: [{ name: 'n1' }],
};

interface FindingRow {
  finding_id: string;
  kind: string;
  resource_arn: string;
  detail: string;
  evidence: { agents: string[]; versions: Record<string, number | null>; observationIds: string[]; [k: string]: unknown };
  detected_at: Date;
}

describe('the inconsistency detector: out-of-band changes found once, with evidence; none for changes through Arbiter', () => {
  let env: TestEnv;
  let client: ArbiterClient;

  beforeAll(async () => {
    env = await startTestEnv({ workers: 1, fleet: FLEET, latencyScale: 0.2, observe: { snapshotMs: 1_000 }, config: { detection: { intervalMs: 500, staleObservationMs: 3_000 } } });
    client = await env.client('sre-bot');
  }, 120_000);

  afterAll(async () => {
    await env?.stop();
  });

  const findings = async (arn: string): Promise<FindingRow[]> =>
    (await env.db.query('SELECT finding_id, kind, resource_arn, detail, evidence, detected_at FROM arbiter.inconsistencies WHERE resource_arn = $1 AND fingerprint IS NOT NULL ORDER BY detected_at', [arn])).rows;
  const outOfBand = async (body: Record<string, unknown>) => {
    const res = await signedFetch(env.executorHmacKey, `${env.sim.url}/out-of-band`, { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return (await res.json()) as { requestId: string; version: number };
  };
  /** Found within 10 s, then still exactly once after a few more snapshots. */
  const foundOnce = async (arn: string, kind: string, since: number): Promise<FindingRow> => {
    const first = await eventually(async () => (await findings(arn)).find((f) => f.kind === kind), 10_000, `a ${kind} finding for ${arn}`);
    expect(first.detected_at.getTime() - since).toBeLessThan(10_000);
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await findings(arn)).filter((f) => f.kind === kind)).toHaveLength(1);
    return first;
  };

  it('changes made through Arbiter raise nothing', async () => {
    expect((await client.submitAndWait({ agentId: 'sre-bot', resourceArn: THROUGH, action: 'hotfix', params: { patch: 'p1' } })).status).toBe('EXECUTED');
    expect((await client.submitAndWait({ agentId: 'sre-bot', resourceArn: podArn(THROUGH, 'through-arbiter', 0), action: 'restart' })).status).toBe('EXECUTED');
    expect((await client.submitAndWait({ agentId: 'sre-bot', resourceArn: THROUGH, action: 'scale', params: { replicas: '3' } })).status).toBe('EXECUTED');
    // Several snapshots go by, each compared with what Arbiter verified.
    await new Promise((r) => setTimeout(r, 3_500));
    const { rows } = await env.db.query('SELECT count(*)::int AS n FROM arbiter.observations WHERE resource_arn = $1', [THROUGH]);
    expect(rows[0].n).toBeGreaterThan(3);
    expect(await findings(THROUGH)).toEqual([]);
  });

  it('`arbiter observe` publishes a person’s observation; the detector stores it with its source', async () => {
    const { runArbiterCli } = await import('../support/cli.ts');
    const run = await runArbiterCli(['observe', '--arn', THROUGH, '--version', '3', '--state', 'replicas=3', '--source', 'person:bob', '--json'], env.cliEnv);
    expect(run.code, run.stderr).toBe(0);
    const { observationId } = JSON.parse(run.stdout) as { observationId: string };
    const row = await eventually(async () => {
      const { rows } = await env.db.query('SELECT source, version, state FROM arbiter.observations WHERE observation_id = $1', [observationId]);
      return rows[0];
    }, 10_000, 'the observation in arbiter.observations');
    expect({ ...row, version: Number(row.version) }).toEqual({ source: 'person:bob', version: 3, state: { replicas: '3' } });
  });

  it('drift: a change behind Arbiter’s back, after its last verified change', async () => {
    const verified = await client.submitAndWait({ agentId: 'sre-bot', resourceArn: DRIFTED, action: 'hotfix', params: { patch: 'fix-1' } });
    expect(verified.status).toBe('EXECUTED');
    const since = Date.now();
    const kubectl = await outOfBand({ arn: DRIFTED, action: 'scale', params: { replicas: '5' }, agentId: 'person:alice' });
    const finding = await foundOnce(DRIFTED, 'drift', since);
    expect(finding.evidence.agents).toContain('person:alice');
    expect(finding.evidence.change).toMatchObject({ requestId: kubectl.requestId, action: 'scale' });
    expect(finding.evidence.versions).toMatchObject({ arbiter: verified.resourceVersion, change: kubectl.version });
    expect(finding.evidence.observationIds.length).toBeGreaterThan(0);
  });

  it('lost_change: a hotfix verified through Arbiter, erased by a rollback that went around it', async () => {
    const hotfix = await client.submitAndWait({ agentId: 'hotfix-bot', resourceArn: HOTFIXED, action: 'hotfix', params: { patch: 'cve-fix' } });
    expect(hotfix.status).toBe('EXECUTED');
    const since = Date.now();
    const rollback = await outOfBand({ arn: HOTFIXED, action: 'rollback', agentId: 'rollback-script' });
    const finding = await foundOnce(HOTFIXED, 'lost_change', since);
    expect(finding.evidence).toMatchObject({ lostRequestId: hotfix.requestId, removedBy: { requestId: rollback.requestId, agentId: 'rollback-script' } });
    expect(finding.evidence.agents).toEqual(['hotfix-bot', 'rollback-script']);
  });

  it('stale_observation: a resource that is observed, changed by Arbiter, and not observed since; a resource nobody observes is left alone', async () => {
    const watched = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/ops/deployment/watched';
    const unwatched = 'arn:sim:k8s:local:000000000000:cluster/prod/ns/ops/deployment/unwatched';
    // Arbiter's last change 10 s ago; the last observation 20 s ago (its observer went quiet).
    for (const arn of [watched, unwatched]) {
      await env.db.query(
        `INSERT INTO arbiter.resource_state (resource_arn, scope, version, last_request_id, last_action, last_agent_id, updated_at)
         VALUES ($1, $1, 4, gen_random_uuid(), 'hotfix', 'sre-bot', now() - interval '10 seconds')`,
        [arn],
      );
    }
    await env.db.query(`INSERT INTO arbiter.observed_state (resource_arn, observation_id, version, observed_at) VALUES ($1, gen_random_uuid(), 3, now() - interval '20 seconds')`, [watched]);
    const finding = await eventually(async () => (await findings(watched)).find((f) => f.kind === 'stale_observation'), 10_000, 'a stale_observation finding');
    expect(finding.evidence.versions).toEqual({ arbiter: 4 });
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await findings(watched)).filter((f) => f.kind === 'stale_observation')).toHaveLength(1);
    expect(await findings(unwatched)).toEqual([]);
  });

  it('conflicting_commits: two agents using the lock API directly, the second based on a version from before the first', async () => {
    const a = new ArbiterLocks(env.databaseUrl, 'agent-a');
    const b = new ArbiterLocks(env.databaseUrl, 'agent-b');
    try {
      const seen = env.sim.fleet.observe(RACED).version; // both agents read the deployment now
      const since = Date.now();
      for (const [locks, agentId, action, params] of [
        [a, 'agent-a', 'hotfix', { patch: 'a' }],
        [b, 'agent-b', 'deploy', { revision: 'v9' }],
      ] as const) {
        const lease = await locks.acquire(RACED, 30_000);
        if (!lease.acquired) throw new Error(`${agentId} did not get the lock`);
        const res = await signedFetch(env.executorHmacKey, `${env.sim.url}/actions`, {
          method: 'POST',
          body: JSON.stringify({ requestId: randomUUID(), agentId, arn: RACED, action, params: { ...params, basedOnVersion: String(seen) }, fencingToken: lease.fencingToken }),
        });
        expect(res.status).toBe(200);
        await locks.release(RACED, lease.fencingToken);
      }
      const finding = await foundOnce(RACED, 'conflicting_commits', since);
      expect(finding.evidence.agents).toEqual(['agent-a', 'agent-b']);
      expect(finding.evidence.versions).toMatchObject({ secondBasedOn: seen });
    } finally {
      await a.close();
      await b.close();
    }
    // Counted on /metrics exactly as recorded (a staged race can support more than one kind: the
    // rollback that erased the hotfix was also drift).
    const metrics = await (await fetch(`${env.workers[0]!.metricsUrl}/metrics`)).text();
    const { rows } = await env.db.query(`SELECT kind, count(*)::int AS n FROM arbiter.inconsistencies WHERE fingerprint IS NOT NULL GROUP BY kind`);
    expect(rows.map((r) => r.kind).sort()).toEqual(['conflicting_commits', 'drift', 'lost_change', 'stale_observation']);
    for (const r of rows) expect(metrics, r.kind).toMatch(new RegExp(`arbiter_inconsistencies_total\\{kind="${r.kind}"\\} ${r.n}\\b`));
  });
});
