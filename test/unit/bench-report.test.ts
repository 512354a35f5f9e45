import { describe, expect, it } from 'vitest';
import { lockDifferences } from '../../tools/bench/baseline.ts';
import { OutcomeTally } from '../../tools/bench/outcome-check.ts';
import { narrowRowLine } from '../../tools/bench/pg-copy-ceiling.ts';
import type { CpuUsage } from '../../tools/bench/proc.ts';
import { arrivalCeilingLine, arrivalPathLine, brokerLine, comparisonRows, cpuPerRequestRows, verdictProblems } from '../../tools/bench/report.ts';
import type { ArmResult } from '../../tools/bench/arm.ts';
import { BENCH_BROKER_JVM_OPTIONS, benchStackEnv, compareArms, inArmOrder, type BenchResult } from '../../tools/bench/run.ts';
import { comparisonRow, cpuPerRequest, groupUs, ratio, UNATTRIBUTED } from '../../tools/bench/summary.ts';
import { workerSemiSpace } from '../../tools/support/index.ts';

const usage = (coreSeconds: Record<string, number>, machineBusy: number, wallSeconds = 10, cores = 2): CpuUsage => ({ wallSeconds, cores, machineBusy, coreSeconds });

describe('cpuPerRequest', () => {
  it('gives µs per request by group, the load generator by its role, and the busy time no live process holds', () => {
    // 10 s on 2 cores, 90 % busy = 18 core-seconds; the groups account for 15 of them.
    const cpu = cpuPerRequest(usage({ 'arbiter workers': 8, postgres: 4, 'bench process': 2, 'other processes': 1 }, 0.9), 100_000);
    expect(groupUs(cpu, 'arbiter workers')).toBeCloseTo(80);
    expect(groupUs(cpu, 'postgres')).toBeCloseTo(40);
    expect(groupUs(cpu, 'load generator (bench process)')).toBeCloseTo(20);
    expect(groupUs(cpu, UNATTRIBUTED)).toBeCloseTo(30);
    expect(cpu.totalUs).toBeCloseTo(180);
    expect(cpu.totalWithoutOthersUs).toBeCloseTo(170);
    expect(cpu.groups.map((g) => g.group)).toEqual(['arbiter workers', 'postgres', UNATTRIBUTED, 'load generator (bench process)', 'other processes']);
  });

  it('never reports less in total than the groups used (a machine reading behind the process readings)', () => {
    const cpu = cpuPerRequest(usage({ postgres: 5 }, 0.1), 1_000_000);
    expect(cpu.totalUs).toBeCloseTo(5);
    expect(groupUs(cpu, UNATTRIBUTED)).toBeNaN();
  });
});

describe('ratio and comparisonRow', () => {
  it('is new ÷ baseline, and null when either side is missing or the baseline is 0', () => {
    expect(ratio(12_000, 4_000)).toBe(3);
    expect(ratio(1, 0)).toBeNull();
    expect(ratio(null, 4)).toBeNull();
    expect(ratio(Number.NaN, 4)).toBeNull();
    const row = comparisonRow('p99', 150, 45, 'lower');
    expect(row).toEqual({ measure: 'p99', baseline: 150, current: 45, ratio: 0.3, better: 'lower' });
    expect(comparisonRow('x', Number.NaN, 2, 'higher')).toMatchObject({ baseline: null, ratio: null });
  });

  it('renders small figures with decimals and the ratio with the better direction', () => {
    const [row] = comparisonRows([comparisonRow('ratio to the bare loop', 0.048, 0.26, 'higher')]);
    expect(row).toEqual(['ratio to the bare loop', '0.048', '0.260', '5.42× (higher is better)']);
  });
});

describe('OutcomeTally: one final outcome per request', () => {
  it('counts requests with a final outcome, allows the same final republished, and flags two different ones', () => {
    const tally = new OutcomeTally();
    tally.add('a', 'DEFERRED', false);
    tally.add('a', 'EXECUTED', true);
    tally.add('b', 'COALESCED', true);
    tally.add('b', 'COALESCED', true);
    tally.add('c', 'COALESCED', true);
    tally.add('c', 'EXECUTED', true);
    tally.add('d', 'DEFERRED', false);
    expect(tally.result()).toEqual({
      records: 7,
      progressRecords: 2,
      finalRecords: 5,
      requestsWithFinal: 3,
      republished: 1,
      conflicting: 1,
      conflictExamples: ['c: COALESCED then EXECUTED'],
    });
  });
});

describe('lockDifferences', () => {
  const lock = (packages: Record<string, { version: string; integrity?: string }>) => ({ packages: { '': { version: '0.1.0' }, ...packages } });

  it('is empty when our node_modules holds every locked package of the baseline at its version (extra packages are fine)', () => {
    expect(lockDifferences(lock({ 'node_modules/pg': { version: '8.1.0' }, 'node_modules/pg-copy-streams': { version: '7.0.0' } }), lock({ 'node_modules/pg': { version: '8.1.0' } }))).toEqual([]);
  });

  it('names what is missing or at another version', () => {
    expect(lockDifferences(lock({ 'node_modules/pg': { version: '8.2.0' } }), lock({ 'node_modules/pg': { version: '8.1.0' }, 'node_modules/avsc': { version: '5.7.9' } }))).toEqual([
      'pg@8.1.0 (have 8.2.0)',
      'avsc@5.7.9 (missing)',
    ]);
  });
});

describe('narrowRowLine', () => {
  it('is one tab-separated COPY text line in column order', () => {
    const line = narrowRowLine({
      requestId: '00000000-0000-4000-8000-000000000001',
      primaryRequestId: '00000000-0000-4000-8000-000000000002',
      agentId: 'agent-007',
      resourceArn: 'arn:x:pod/a',
      scope: 'arn:x:deployment/a',
      action: 'restart',
      topic: 'bench.requests',
      partition: 3,
      offset: 42,
      receivedAt: new Date('2026-01-02T03:04:05.678Z'),
      latencyMs: 1.5,
    });
    expect(line).toBe(
      '00000000-0000-4000-8000-000000000001\t00000000-0000-4000-8000-000000000002\tagent-007\tarn:x:pod/a\tarn:x:deployment/a\trestart\tbench.requests\t3\t42\t2026-01-02T03:04:05.678Z\t1.5\n',
    );
  });
});

describe('verdictProblems', () => {
  const executions = { expected: 10, executed: 10, executedRequests: 10, auditedExecutions: 10, recoveredExecutions: 0, duplicateExecutions: 0, violations: {}, doubled: [], partitionsWithSeveralOwners: 0, ok: true };
  const topic = { records: 100, progressRecords: 0, finalRecords: 100, requestsWithFinal: 100, republished: 0, conflicting: 0, conflictExamples: [] };
  const base = {
    storm: { requests: 100, distinctPods: 10, duplicatesPerPod: 10, encodedBytes: 0 },
    arbiter: { finalCount: 100, missingFinal: 0 },
    outcomeTopic: topic,
    probes: [],
    executions,
    current: { missingFinal: 0 },
  } as unknown as BenchResult;

  it('is empty when every request has its final outcome and executions are exact', () => {
    expect(verdictProblems(base)).toEqual([]);
  });

  it('names missing outcomes (from Postgres or the topic), conflicts and wrong executions', () => {
    const problems = verdictProblems({
      ...base,
      outcomeTopic: { ...topic, requestsWithFinal: 97, conflicting: 1, conflictExamples: ['x: COALESCED then EXECUTED'] },
      current: { missingFinal: 3 } as BenchResult['current'],
      executions: { ...executions, executed: 11, ok: false },
    });
    expect(problems).toHaveLength(3);
    expect(problems[0]).toContain('3 of 100 requests lack their final outcome');
    expect(problems[0]).toContain('outcomes topic: 97');
    expect(problems[1]).toContain('two different final outcomes');
    expect(problems[2]).toContain('executions ≠ distinct (resource, action, window): fleet executed 11');
  });

  it('names what the execution path left behind: locks held, answers unpublished, requests open', () => {
    const path = (leftOver: { heldLocks: number; unpublished: number; open: number }) =>
      ({ current: { executions: 500, leftOver }, baseline: null }) as unknown as BenchResult['executionPath'];
    expect(verdictProblems({ ...base, executionPath: path({ heldLocks: 0, unpublished: 0, open: 0 }) })).toEqual([]);
    expect(verdictProblems({ ...base, executionPath: path({ heldLocks: 2, unpublished: 0, open: 1 }) })).toEqual([
      'the execution path left 2 locks held, 0 answers unpublished and 1 requests open after 500 executions',
    ]);
  });
});

describe('cpuPerRequestRows', () => {
  it('puts this checkout, the baseline and the bare loop side by side, with the totals', () => {
    const current = { cpu: cpuPerRequest(usage({ 'arbiter workers': 1, postgres: 0.5 }, 0.075), 100_000) };
    const baseline = { commit: 'abcdef0123', cpu: cpuPerRequest(usage({ 'arbiter workers': 3, postgres: 1 }, 0.2), 100_000) };
    const { header, rows } = cpuPerRequestRows({ current, baseline, bareCpu: null } as unknown as BenchResult);
    expect(header).toEqual(['CPU µs per request', 'this checkout', 'baseline abcdef0']);
    expect(rows).toContainEqual(['arbiter workers', '10.0', '30.0']);
    expect(rows).toContainEqual(['postgres', '5.0', '10.0']);
    expect(rows).toContainEqual(['total (whole machine)', '15.0', '40.0']);
  });
});

describe('inArmOrder', () => {
  const arms = (ran: string[]) => ({
    baseline: async () => (ran.push('baseline'), 'B'),
    current: async () => (ran.push('current'), 'C'),
  });

  it('runs the baseline first by default, and this checkout first with --current-first, each result in its place', async () => {
    const byDefault: string[] = [];
    const a = arms(byDefault);
    expect(await inArmOrder(false, a.baseline, a.current)).toEqual({ baseline: 'B', current: 'C' });
    expect(byDefault).toEqual(['baseline', 'current']);

    const swapped: string[] = [];
    const b = arms(swapped);
    expect(await inArmOrder(true, b.baseline, b.current)).toEqual({ baseline: 'B', current: 'C' });
    expect(swapped).toEqual(['current', 'baseline']);
  });

  it('does not start the second arm before the first has finished', async () => {
    const events: string[] = [];
    const slow = (name: string) => async () => {
      events.push(`${name} start`);
      await new Promise((resolve) => setTimeout(resolve, 10));
      events.push(`${name} end`);
      return name;
    };
    await inArmOrder(true, slow('baseline'), slow('current'));
    expect(events).toEqual(['current start', 'current end', 'baseline start', 'baseline end']);
  });
});

describe('compareArms', () => {
  const arm = (requestsPerSecond: number, groups: Record<string, number>): ArmResult =>
    ({
      arbiter: { requestsPerSecond, lagZeroSeconds: 40, peakRssMb: [250, 260] },
      cpu: cpuPerRequest(usage(groups, Object.values(groups).reduce((a, b) => a + b, 0)), 100_000),
      probes: [],
    }) as unknown as ArmResult;

  it('puts the simulated fleet beside the builds: the same work in both arms, so its ratio is the machine', () => {
    const rows = compareArms(arm(10_000, { 'arbiter workers': 6, postgres: 2, 'simulated fleet': 0.5 }), arm(9_000, { 'arbiter workers': 6.6, postgres: 2.2, 'simulated fleet': 0.6 }), null);
    const fleet = rows.find((r) => r.measure.startsWith('CPU µs/request, simulated fleet'));
    expect(fleet).toMatchObject({ baseline: 5, current: 6, better: 'lower' });
    expect(fleet!.ratio).toBeCloseTo(1.2);
    expect(rows[0]).toMatchObject({ measure: 'decided + audited, requests/s', ratio: 0.9 });
  });
});

describe('arrivalPathLine', () => {
  const result = (label: string, passes: number[]) => ({ label, requests: 200_000, chunk: 1_000, postgresUsPerRequest: passes, seconds: passes.map(() => 7) });

  it('gives each build the median of its passes, each pass, and this checkout over the baseline', () => {
    // One slow pass (18) moves a mean, not the median.
    const line = arrivalPathLine({ current: result('this checkout', [18, 8, 9, 10]), baseline: result('baseline abc', [11, 13, 12, 12]) });
    expect(line).toBe(
      '9.5 µs (passes: 18.0, 8.0, 9.0, 10.0) for 200,000 requests, 1,000/statement; baseline 12.0 µs (passes: 11.0, 13.0, 12.0, 12.0): 0.79× (medians; the builds taking turns)',
    );
  });

  it('is this checkout alone when the baseline was not measured', () => {
    expect(arrivalPathLine({ current: result('this checkout', [9.5]), baseline: null })).toBe('9.5 µs (passes: 9.5) for 200,000 requests, 1,000/statement');
  });
});

describe("the bench's broker", () => {
  it('starts with C1 only unless ARBITER_KAFKA_JVM_OPTIONS says otherwise (empty: the JVM defaults)', () => {
    expect(benchStackEnv({}).ARBITER_KAFKA_JVM_OPTIONS).toBe(BENCH_BROKER_JVM_OPTIONS);
    expect(BENCH_BROKER_JVM_OPTIONS).toBe('-XX:TieredStopAtLevel=1');
    expect(benchStackEnv({ ARBITER_KAFKA_JVM_OPTIONS: '' }).ARBITER_KAFKA_JVM_OPTIONS).toBe('');
    expect(benchStackEnv({ ARBITER_KAFKA_JVM_OPTIONS: '-Xmx1g', PATH: '/bin' })).toMatchObject({ ARBITER_KAFKA_JVM_OPTIONS: '-Xmx1g', PATH: '/bin' });
  });

  it('the report says which broker a run measured', () => {
    expect(brokerLine({ startedByBench: true, jvmOptions: '-XX:TieredStopAtLevel=1' })).toBe('started by the bench, JVM options: -XX:TieredStopAtLevel=1');
    expect(brokerLine({ startedByBench: true, jvmOptions: '' })).toMatch(/the JVM's defaults/);
    expect(brokerLine({ startedByBench: false, jvmOptions: null })).toMatch(/already running/);
  });
});

describe("the ratio to PostgreSQL's arrival ceiling", () => {
  const pg = (requestsPerSecond: number) => ({ arrivals: { requests: 1, seconds: 1, requestsPerSecond, chunk: 1_000 } }) as BenchResult['pg'];
  const bare = (recordsPerSecond: number) => ({ recordsPerSecond }) as BenchResult['bare'];

  it('gives the share of the ceiling, what the ceiling is against the bare loop, and the baseline beside it', () => {
    const line = arrivalCeilingLine({ pg: pg(60_000), bare: bare(300_000), ratioToArrivalCeiling: 0.5, baselineRatioToArrivalCeiling: 0.1, baseline: {} as BenchResult['baseline'] });
    expect(line).toBe('0.50× of 60,000 requests/s (the ceiling itself is 0.200× the bare loop); baseline 0.10×');
  });

  it('leaves out what was not measured', () => {
    expect(arrivalCeilingLine({ pg: pg(60_000), bare: null, ratioToArrivalCeiling: 0.5, baseline: null })).toBe('0.50× of 60,000 requests/s');
    expect(arrivalCeilingLine({ pg: null, bare: bare(300_000), ratioToArrivalCeiling: null, baseline: null })).toBe('–');
    // A result saved before the ratio existed.
    expect(arrivalCeilingLine({ pg: pg(60_000), bare: null, baseline: null })).toBe('–');
  });
});

describe("the workers' young generation in the report", () => {
  it("is the image's flag unless the bench's NODE_OPTIONS gives one, which reaches the workers", () => {
    expect(workerSemiSpace({})).toEqual({ flag: '--max-semi-space-size=8', fromImage: true });
    expect(workerSemiSpace({ NODE_OPTIONS: '--max-semi-space-size=16' })).toEqual({ flag: '--max-semi-space-size=16', fromImage: false });
  });
});
