/**
 * The analysts' answers are pinned (issue 12): a deterministic recorded storm goes through real
 * Kafka to a real worker and a fresh database, then every analyst view (migrations 0002, 0006, 0008),
 * the tables analysts query (requests, decisions, executions, lock_events) and every
 * `arbiter audit <report> --json` are read, normalised for what legitimately varies run to run
 * (times, worker ids, latencies, Kafka offsets, the topic prefix, generated ids; rows sorted), and
 * compared by deep equality with test/fixtures/analyst-views.golden.json.
 *
 * The golden file was written by this test at commit 1ce7a6a, before duplicates became narrow rows
 * (migration 0010), and gave the same file in two runs there. So a change to how Arbiter stores
 * arrivals passes only if analysts get the same answers from it. UPDATE_GOLDEN=1 rewrites the file
 * instead of comparing (only for a change that means to alter the answers).
 *
 * The storm is designed so that every outcome is fixed, not a matter of timing:
 *   wave 1  30 pods: a primary restart plus 5 identical duplicates from 5 other agents in one burst,
 *           while the fleet's restart takes 1.6 s, so every duplicate joins its primary in flight;
 *           a scale and a hotfix that execute; a two-step plan; rejections on arrival (unknown
 *           action, too many params, deadline passed); a resource the executor does not know; a
 *           scale the executor refuses (FAILED);
 *           the lock API: two agents fail to take a lock another holds, one lease expires unreleased
 *           (recorded by the reaper) and is then taken by another agent;
 *  wave 2   once every primary is final: 2 more duplicates for 10 of the pods, now coalesced into
 *           finished primaries; stale requests (expectedVersion one behind) and a rollback that
 *           conflicts with the hotfix; an observation showing a change made around Arbiter (drift).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterLocks, type ArbiterClient, type RemediationOutcome, type RequestInput } from '../../src/agent-sdk/index.ts';
import { REPORT_NAMES, ANALYST_VIEWS } from '../../src/audit/index.ts';
import { deploymentArn, nodeArn, podArn } from '../../tools/fleet/index.ts';
import { runArbiterCli } from '../support/cli.ts';
import { describeDifferences, normaliseRows, readGolden, seededUuid, writeGolden, type GoldenAnswers, type GoldenRow, type NormaliseRules } from '../support/golden.ts';
import { eventually, startTestEnv, type TestEnv } from '../support/harness.ts';

const GOLDEN = fileURLToPath(new URL('../fixtures/analyst-views.golden.json', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const SEED = 'arbiter/analyst-views-stable/v1';
const id = (label: string) => seededUuid(SEED, label);

const NS = 'storm';
const PODS = 30;
const svc = (i: number) => `svc-${String(i).padStart(2, '0')}`;
const deployment = (name: string) => deploymentArn(NS, name);
const pod = (name: string, replica = 0) => podArn(deployment(name), name, replica);
const HEALERS = ['healer-a', 'healer-b', 'healer-c', 'healer-d', 'healer-e', 'healer-f'];
const LATE_AGENTS = ['pager-bot', 'chatops-bot'];
/** The fleet's restart takes this long: far longer than a burst takes to arrive, so its duplicates join in flight. */
const RESTART_MS = 1_600;
const NODE_HELD = nodeArn('node-1');
const NODE_EXPIRED = nodeArn('node-2');
const EXPIRING_TTL_MS = 400;
const OUT_OF_BAND_AT = Date.UTC(2026, 10, 30, 12, 0, 0);
/** Every simulated ARN starts so: written shorter in the golden file (a fixed abbreviation, nothing lost). */
const ARN_HEAD = 'arn:sim:k8s:local:000000000000:cluster/prod/';

const FLEET = {
  deployments: [...Array.from({ length: PODS }, (_, i) => svc(i)), 'capacity', 'payments', 'planned', 'bad-scale'].map((name) => ({
    namespace: NS,
    name,
    replicas: 2,
    minAvailable: 1,
    revision: 'v1',
  })),
  latencyMs: { restart: RESTART_MS, scale: 100, hotfix: 100, rollback: 100, deploy: 100 },
  restartSettleMs: 0,
};

/** Every request of the storm, by label; `labels` names each id in the golden file. */
const labels = new Map<string, string>();
function label(uuid: string, name: string): string {
  labels.set(uuid, `<${name}>`);
  return uuid;
}
function request(name: string, input: Omit<RequestInput, 'requestId'>): RequestInput & { requestId: string } {
  return { ...input, requestId: label(id(name), name) };
}

function waveOne(now: number): RequestInput[] {
  const burst: RequestInput[] = [];
  for (let i = 0; i < PODS; i++) {
    const primaryAgent = HEALERS[i % HEALERS.length]!;
    const common = { resourceArn: pod(svc(i)), action: 'restart', params: { grace: '30s' }, incidentId: `INC-${7000 + (i % 3)}` };
    burst.push(request(`w1/${svc(i)}/primary`, { ...common, agentId: primaryAgent, reason: `pod ${svc(i)}-0 crash-looping (OOMKilled)` }));
    for (const agent of HEALERS.filter((a) => a !== primaryAgent)) {
      burst.push(request(`w1/${svc(i)}/dup-${agent}`, { ...common, agentId: agent, reason: `${agent} saw ${svc(i)}-0 down` }));
    }
  }
  burst.push(
    request('w1/capacity/scale', { agentId: 'capacity-bot', resourceArn: deployment('capacity'), action: 'scale', params: { replicas: '3' }, reason: 'queue depth rising' }),
    request('w1/payments/hotfix', { agentId: 'hotfix-bot', resourceArn: deployment('payments'), action: 'hotfix', params: { patch: 'cve-2026-0042' }, incidentId: 'INC-7100' }),
    request('w1/bad-scale/scale', { agentId: 'capacity-bot', resourceArn: deployment('bad-scale'), action: 'scale', params: { replicas: 'lots' } }),
    request('w1/ghost/restart', { agentId: 'ghost-bot', resourceArn: pod('ghost'), action: 'restart', reason: 'a pod nobody runs' }),
    request('w1/unknown-action', { agentId: 'rogue-bot', resourceArn: pod(svc(5), 1), action: 'reboot' }),
    request('w1/too-many-params', {
      agentId: 'verbose-bot',
      resourceArn: pod(svc(6), 1),
      action: 'restart',
      params: Object.fromEntries(Array.from({ length: 65 }, (_, k) => [`p${String(k).padStart(2, '0')}`, 'v'])),
    }),
    request('w1/deadline-passed', { agentId: 'late-bot', resourceArn: pod(svc(7), 1), action: 'restart', deadline: now - 3_600_000, reason: 'asked an hour too late' }),
  );
  return burst;
}

function waveTwo(versions: { pod: (i: number) => number; capacity: number }): RequestInput[] {
  const burst: RequestInput[] = [];
  for (let i = 0; i < PODS; i += 3) {
    for (const agent of LATE_AGENTS) {
      burst.push(request(`w2/${svc(i)}/dup-${agent}`, { agentId: agent, resourceArn: pod(svc(i)), action: 'restart', params: { grace: '30s' }, reason: `${agent} paged for ${svc(i)}-0` }));
    }
  }
  for (const i of [1, 2]) {
    burst.push(
      request(`w2/${svc(i)}/stale`, { agentId: 'cautious-bot', resourceArn: pod(svc(i)), action: 'restart', params: { grace: '0s' }, expectedVersion: versions.pod(i) - 1 }),
    );
  }
  burst.push(
    request('w2/capacity/stale-scale', { agentId: 'autoscaler', resourceArn: deployment('capacity'), action: 'scale', params: { replicas: '4' }, expectedVersion: versions.capacity - 1 }),
    request('w2/payments/rollback', { agentId: 'rollback-bot', resourceArn: deployment('payments'), action: 'rollback', reason: 'error rate after the hotfix' }),
  );
  return burst;
}

describe('analyst views and audit reports: the same answers for the same recorded storm', () => {
  let env: TestEnv;
  let client: ArbiterClient;
  const lockClients: ArbiterLocks[] = [];

  beforeAll(async () => {
    env = await startTestEnv({
      workers: 1,
      fleet: FLEET,
      latencyScale: 1,
      config: { locks: { reaperIntervalMs: 200 }, detection: { intervalMs: 300 } },
    });
    client = await env.client('storm-recorder');
  }, 120_000);

  afterAll(async () => {
    await Promise.all(lockClients.map((l) => l.close()));
    await env?.stop();
  });

  const locks = (agent: string) => {
    const l = new ArbiterLocks(env.databaseUrl, agent);
    lockClients.push(l);
    return l;
  };
  const finals = (ids: string[]) => Promise.all(ids.map((requestId) => client.awaitOutcome(requestId, { timeoutMs: 40_000 })));

  async function recordStorm(): Promise<void> {
    // Wave 1, in one produce call and a fixed order: per scope, the primary before its duplicates.
    const wave1 = waveOne(Date.now());
    const plan = client.plan(
      [
        { action: 'hotfix', resourceArn: deployment('planned'), params: { patch: 'p-7' }, requestId: label(id('plan/step-0'), 'plan/step-0') },
        { action: 'restart', resourceArn: pod('planned'), requestId: label(id('plan/step-1'), 'plan/step-1') },
      ],
      { agentId: 'planner-bot', planId: id('plan'), reason: 'patch then bounce' },
    );
    label(id('plan'), 'plan');
    await client.submitMany(wave1);
    await plan.submit();

    // The lock API, meanwhile: node-1 held by lock-agent-a, so b (twice) and c fail to take it.
    const holder = locks('lock-agent-a');
    const held = await holder.acquire(NODE_HELD, 60_000);
    expect(held.acquired).toBe(true);
    for (const agent of ['lock-agent-b', 'lock-agent-c', 'lock-agent-b']) expect((await locks(agent).acquire(NODE_HELD, 30_000)).acquired).toBe(false);
    expect(await holder.release(NODE_HELD, held.acquired ? held.fencingToken : -1)).toBe(true);
    // node-2: lock-agent-d's short lease lapses; the reaper records it; then lock-agent-e takes the lock.
    expect((await locks('lock-agent-d').acquire(NODE_EXPIRED, EXPIRING_TTL_MS)).acquired).toBe(true);
    await eventually(
      async () => (await env.db.query("SELECT 1 FROM arbiter.lock_events WHERE resource_arn = $1 AND event = 'expired'", [NODE_EXPIRED])).rowCount,
      10_000,
      'the reaper to record the expired lease',
    );
    const taker = locks('lock-agent-e');
    const taken = await taker.acquire(NODE_EXPIRED, 60_000);
    expect(taken.acquired).toBe(true);
    expect(await taker.release(NODE_EXPIRED, taken.acquired ? taken.fencingToken : -1)).toBe(true);

    const outcomes1 = await finals(wave1.map((r) => r.requestId!));
    const byId = new Map<string, RemediationOutcome>(outcomes1.map((o) => [o.requestId, o]));
    const status = (label: string) => byId.get(id(label))?.status;
    // The design holds: every duplicate joined in flight, every primary executed.
    for (let i = 0; i < PODS; i++) {
      expect(status(`w1/${svc(i)}/primary`)).toBe('EXECUTED');
      for (const agent of HEALERS.filter((a) => a !== HEALERS[i % HEALERS.length])) expect(status(`w1/${svc(i)}/dup-${agent}`)).toBe('COALESCED');
    }
    const { rows: inFlight } = await env.db.query("SELECT count(*)::int AS n FROM arbiter.decisions WHERE status = 'COALESCED' AND detail LIKE '%, in flight'");
    expect(inFlight[0].n).toBe(PODS * (HEALERS.length - 1));
    expect(status('w1/capacity/scale')).toBe('EXECUTED');
    expect(status('w1/payments/hotfix')).toBe('EXECUTED');
    expect((await plan.wait({ timeoutMs: 40_000 })).status).toBe('SUCCEEDED');
    const versionOf = (label: string) => byId.get(id(label))!.resourceVersion!;

    // Wave 2: late duplicates (coalesced into finished primaries), stale and conflicting requests.
    const wave2 = waveTwo({ pod: (i) => versionOf(`w1/${svc(i)}/primary`), capacity: versionOf('w1/capacity/scale') });
    await client.submitMany(wave2);
    // A watcher saw capacity scaled to 5 by a person, around Arbiter: a drift finding.
    const observationId = label(id('obs/capacity'), 'obs/capacity');
    const kubectl = label(id('out-of-band/capacity-scale'), 'out-of-band/capacity-scale');
    const scaled = versionOf('w1/capacity/scale');
    await client.observe({
      observationId,
      resourceArn: deployment('capacity'),
      version: scaled + 1,
      source: 'executor:kubectl-watch',
      state: { replicas: 5 },
      // A fixed time: it is kept in the finding's evidence, as the observer reported it.
      recentChanges: [{ requestId: kubectl, agentId: 'person:dave', action: 'scale', version: scaled + 1, basedOnVersion: scaled, at: OUT_OF_BAND_AT }],
    });
    const outcomes2 = await finals(wave2.map((r) => r.requestId!));
    for (const o of outcomes2) byId.set(o.requestId, o);
    expect(status('w2/payments/rollback')).toBe('REJECTED_CONFLICT');
    expect(status('w2/capacity/stale-scale')).toBe('REJECTED_STALE');
    await eventually(
      async () => (await env.db.query("SELECT 1 FROM arbiter.inconsistencies WHERE kind = 'drift' AND resource_arn = $1", [deployment('capacity')])).rowCount,
      10_000,
      'the drift finding',
    );
    // Quiet: no worker lock still held (a release may follow the outcome), nothing left unanswered.
    await eventually(
      async () => (await env.db.query('SELECT count(*)::int AS n FROM arbiter.locks WHERE owner IS NOT NULL')).rows[0].n === 0,
      10_000,
      'every lock released',
    );
  }

  /** The rules that keep what varies run to run out of the answers, and nothing else. */
  function normaliseRules(): NormaliseRules {
    return {
      labels,
      replace: [...env.workers.map((w) => [w.id, '<worker>'] as const), [env.prefix, '<prefix>'], [ARN_HEAD, 'arn:…/']],
      varying: new Set(['latency_ms', 'kafka_offset', 'reaped_ms', 'reapedMs']),
      textPatterns: [[/\b\d+s ago\b/g, '<n>s ago']],
    };
  }

  async function readAnswers(): Promise<GoldenAnswers> {
    const rules = normaliseRules();
    const answers: GoldenAnswers = {};
    const sql = async (name: string, text: string) => {
      answers[name] = normaliseRows((await env.db.query<GoldenRow>(text)).rows, rules);
    };
    for (const view of ANALYST_VIEWS) await sql(`view ${view}`, `SELECT * FROM arbiter.${view}`);
    await sql('table requests', 'SELECT * FROM arbiter.requests');
    await sql('table decisions', 'SELECT * FROM arbiter.decisions');
    await sql('table executions', 'SELECT * FROM arbiter.executions');
    await sql('table lock_events', 'SELECT * FROM arbiter.lock_events');
    await sql('count requests by action', 'SELECT action, count(*)::int AS n FROM arbiter.requests GROUP BY action');
    await sql('count decisions by status', 'SELECT status, final, count(*)::int AS n FROM arbiter.decisions GROUP BY status, final');
    await sql('count final decisions per request', 'SELECT n, count(*)::int AS requests FROM (SELECT request_id, count(*) AS n FROM arbiter.decisions WHERE final GROUP BY request_id) r GROUP BY n');
    await sql('count executions by phase', 'SELECT action, phase, count(*)::int AS n FROM arbiter.executions GROUP BY action, phase');

    const audits: string[][] = [
      ...REPORT_NAMES.filter((r) => r !== 'timeline').map((r) => [r]),
      ['timeline', '--arn', pod(svc(0))],
      ['timeline', '--arn', pod(svc(1))],
      ['timeline', '--arn', deployment('capacity')],
      ['timeline', '--arn', deployment('payments')],
      ['timeline', '--arn', NODE_EXPIRED],
      ['timeline', '--agent', 'healer-b'],
      ['timeline', '--agent', 'pager-bot'],
      ['coalescing', '--agent', 'healer-c'],
      ['agents', '--agent', 'capacity-bot'],
    ];
    for (const args of audits) {
      const name = `audit ${args.join(' ').split(ARN_HEAD).join('arn:…/')}`;
      const run = await runArbiterCli(['audit', ...args, '--json'], env.cliEnv);
      expect(run.code, `arbiter audit ${args.join(' ')}: ${run.stderr}`).toBe(0);
      const { report, filters, truncated, ...sections } = JSON.parse(run.stdout) as Record<string, unknown>;
      expect(truncated, `arbiter audit ${args.join(' ')} cut a section`).toBeUndefined();
      expect(report).toBe(args[0]);
      answers[`${name} (filters)`] = normaliseRows([filters as GoldenRow], rules);
      for (const [section, rows] of Object.entries(sections)) answers[`${name}: ${section}`] = normaliseRows(rows as GoldenRow[], rules);
    }
    return answers;
  }

  it('every view, table and report answers as the golden file says', async () => {
    await recordStorm();
    const answers = await readAnswers();
    // Every view has rows: a view that answers nothing pins nothing.
    for (const view of ANALYST_VIEWS) expect(answers[`view ${view}`]!.length, `arbiter.${view} has no rows`).toBeGreaterThan(0);
    if (UPDATE) {
      writeGolden(GOLDEN, answers);
      return;
    }
    const golden = readGolden(GOLDEN);
    const differences = describeDifferences(golden, answers);
    expect(differences, `the analysts' answers differ from ${GOLDEN}:\n${differences.join('\n')}`).toEqual([]);
    expect(answers).toStrictEqual(golden);
  }, 90_000);
});
