import { renderTable } from '../../src/cli/index.ts';
import { markdownTable as mdTable } from '../support/index.ts';
import { executionPathClean, type PgExecutionsResult } from './pg-executions.ts';
import { median, type PgArrivalsResult } from './pg-arrivals.ts';
import type { CpuUsage } from './proc.ts';
import type { BenchResult } from './run.ts';
import { EMPTY_SUMMARY, type Summary } from './stats.ts';
import type { ComparisonRow, CpuPerRequest } from './summary.ts';

const int = (n: number | undefined | null) => (n === undefined || n === null || !Number.isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US'));
const fixed = (n: number | undefined | null, d = 1) => (n === undefined || n === null || !Number.isFinite(n) ? '–' : n.toFixed(d));
const pct = (n: number | undefined | null) => (n === undefined || n === null || !Number.isFinite(n) ? '–' : `${(n * 100).toFixed(1)} %`);
const latency = (s: Summary | undefined) => (s && s.count ? `p50 ${fixed(s.p50)} / p99 ${fixed(s.p99)} / max ${fixed(s.max)} ms (n=${int(s.count)})` : '–');
const yesNo = (b: boolean | null) => (b === null ? 'not measured' : b ? 'yes' : 'no');

/** Which broker the run measured: one it started (and how), or one already running. */
export function brokerLine(broker: NonNullable<BenchResult['broker']>): string {
  if (!broker.startedByBench) return 'already running (used as it is; its JVM options are whatever it was started with)';
  return `started by the bench, JVM options: ${broker.jvmOptions ? broker.jvmOptions : "the JVM's defaults (C1 and C2)"}`;
}

/** The headline rows, shared by the terminal table and the Markdown. */
function headline(r: BenchResult): Array<[string, string]> {
  const a = r.arbiter;
  return [
    ['storm', `${int(r.storm.requests)} requests over ${int(r.storm.distinctPods)} pods (~${fixed(r.storm.duplicatesPerPod, 0)} duplicates each), ${r.options.workers} workers, ${r.options.partitions} partitions`],
    ['worker config (over the defaults)', JSON.stringify(r.workerConfig)],
    ['worker heap (V8 old space)', r.workerHeapMb ? `capped: node --max-old-space-size=${r.workerHeapMb} (both builds)` : "Node's default sizing"],
    ...(r.workerMalloc
      ? ([['worker malloc (glibc)', `${Object.entries(r.workerMalloc).map(([name, value]) => `${name}=${value}`).join(' ')}, as the image sets it (both builds)`]] as Array<[string, string]>)
      : []),
    ...(r.workerSemiSpace
      ? ([['worker young generation (V8)', `${r.workerSemiSpace.flag}, ${r.workerSemiSpace.fromImage ? 'as the image sets it' : "from the bench's NODE_OPTIONS"} (both builds)`]] as Array<[string, string]>)
      : []),
    ...(r.broker ? ([['broker', brokerLine(r.broker)]] as Array<[string, string]>) : []),
    ['loader (kafkajs producer, acks=-1)', `${int(r.load.recordsPerSecond)} records/s`],
    ['ceiling: bare kafkajs consume→produce loop', r.bare ? `${int(r.bare.recordsPerSecond)} records/s (${fixed(r.bare.seconds)} s, ${r.bare.processes} processes)` : 'skipped'],
    ['ceiling: Postgres bulk insert, decisions rows', r.pg ? `${int(r.pg.decisions.rowsPerSecond)} rows/s (unnest, ${int(r.pg.decisions.chunk)} rows/statement, ${r.pg.connections} connections)` : 'skipped'],
    ["ceiling: Postgres, Arbiter's arrival write set", r.pg ? `${int(r.pg.arrivals.requestsPerSecond)} requests/s (recordArrivals, ${int(r.pg.arrivals.chunk)}/statement)` : 'skipped'],
    ...(r.copy
      ? ([['ceiling: Postgres COPY, narrow duplicate rows', `${int(r.copy.rowsPerSecond)} rows/s (COPY FROM STDIN, ${int(r.copy.chunk)} rows/COPY, PK on request id, logged table, ${r.copy.connections} connections); ${fixed(pgUsPerRow(r.copy.cpu, r.copy.rows), 1)} µs Postgres CPU per row`]] as Array<[string, string]>)
      : []),
    ...(r.executionPath ? ([['Postgres CPU per execution (lease, start, final decision, release, outbox)', executionPathLine(r.executionPath)]] as Array<[string, string]>) : []),
    ...(r.arrivalPath ? ([['Postgres CPU per request, arrival write set alone', arrivalPathLine(r.arrivalPath)]] as Array<[string, string]>) : []),
    ...(r.baseline
      ? ([[`baseline ${r.baseline.label} end-to-end`, `${int(r.baseline.arbiter.requestsPerSecond)} requests/s (${fixed(r.baseline.arbiter.seconds)} s); ratio to bare loop ${fixed(r.baselineRatioToBareLoop, 3)}×`]] as Array<[string, string]>)
      : []),
    ['Arbiter end-to-end (decided + audited)', `${int(a.requestsPerSecond)} requests/s (${fixed(a.seconds)} s; steady 10→90 %: ${int(a.steadyRequestsPerSecond)}/s)`],
    ['ratio to bare kafkajs loop', r.ratioToBareLoop === null ? '–' : `${fixed(r.ratioToBareLoop, 3)}× (target ≥ 0.25×: ${yesNo(r.verdict.ratioTargetMet)})`],
    ...(r.pg ? ([["ratio to PostgreSQL's arrival ceiling", arrivalCeilingLine(r)]] as Array<[string, string]>) : []),
    ...(r.baseline ? ([['throughput new ÷ baseline', `${fixed(r.comparison?.[0]?.ratio, 2)}× (${r.options.currentFirst ? 'this checkout ran first' : 'the baseline ran first'})`]] as Array<[string, string]>) : []),
    ...(r.current ? ([['CPU per request, all processes (without other people\'s)', `${fixed(r.current.cpu.totalUs, 0)} µs (${fixed(r.current.cpu.totalWithoutOthersUs, 0)} µs); PostgreSQL ${fixed(groupUsOf(r.current.cpu, 'postgres'), 0)} µs`]] as Array<[string, string]>) : []),
    ['consumer lag back to 0 after the storm\'s last record', a.lagZeroSeconds === undefined ? '–' : `${fixed(a.lagZeroSeconds)} s`],
    ['all outcomes on the outcomes topic after last decision', `+${fixed(a.publishLagSeconds)} s (${int(a.outcomeRecords)} outcome records; outbox flags left unset: ${int(a.outboxUnflagged)})`],
    ...(r.outcomeTopic
      ? ([['outcomes topic: requests with a final outcome', `${int(r.outcomeTopic.requestsWithFinal)} of ${int(r.storm.requests)} (${int(r.outcomeTopic.finalRecords)} final records, ${int(r.outcomeTopic.republished)} republished, ${int(r.outcomeTopic.progressRecords)} progress; conflicting: ${int(r.outcomeTopic.conflicting)})`]] as Array<[string, string]>)
      : []),
    ['storm decision latency (backlog queueing)', latency(a.decisionLatencyMs)],
    ...r.probes.flatMap((p): Array<[string, string]> => [
      [`probe (${p.label}) @ ${int(p.achievedRate)} req/s: first decision`, `${latency(p.decisionLatencyMs)} (p99 < 50 ms: ${p.decisionLatencyMs.p99 < 50 ? 'yes' : 'no'})`],
      [`probe (${p.label}): append → fetched by a worker`, latency(p.fetchDelayMs)],
      [`probe (${p.label}): append → durable + published outcome`, latency(p.durableOutcomeLatencyMs)],
      ...(p.sendToAppendMs ? ([[`probe (${p.label}): bench send → append (before the above)`, latency(p.sendToAppendMs)]] as Array<[string, string]>) : []),
    ]),
    ['peak worker RSS (VmHWM)', a.peakRssMb.map((m) => `${int(m)} MiB`).join(', ')],
    ['requests without a final outcome (Postgres or outcomes topic)', int(r.current?.missingFinal ?? a.missingFinal)],
    [
      'executions: fleet / EXECUTED requests / audited / expected',
      `${int(r.executions.executed)} / ${int(r.executions.executedRequests)} / ${int(r.executions.auditedExecutions)} (${int(r.executions.recoveredExecutions)} recovered) / ${int(r.executions.expected)}, same requestId twice: ${r.executions.duplicateExecutions} → ${r.executions.ok ? 'OK' : 'FAILED'}`,
    ],
  ];
}

/**
 * Arbiter's throughput as a share of PostgreSQL's own ceiling for the arrival write set, and what
 * that ceiling allows against the bare loop: the audit trail alone caps the bare-loop ratio there.
 */
export function arrivalCeilingLine(r: Pick<BenchResult, 'pg' | 'bare' | 'ratioToArrivalCeiling' | 'baselineRatioToArrivalCeiling' | 'baseline'>): string {
  const ceiling = r.pg?.arrivals.requestsPerSecond;
  if (!ceiling || r.ratioToArrivalCeiling === undefined || r.ratioToArrivalCeiling === null) return '–';
  const base = r.baseline && r.baselineRatioToArrivalCeiling ? `; baseline ${fixed(r.baselineRatioToArrivalCeiling, 2)}×` : '';
  const cap = r.bare ? ` (the ceiling itself is ${fixed(ceiling / r.bare.recordsPerSecond, 3)}× the bare loop)` : '';
  return `${fixed(r.ratioToArrivalCeiling, 2)}× of ${int(ceiling)} requests/s${cap}${base}`;
}

const groupUsOf = (cpu: CpuPerRequest, group: string) => cpu.groups.find((g) => g.group === group)?.usPerRequest ?? NaN;
const pgUsPerRow = (cpu: CpuUsage, rows: number) => ((cpu.coreSeconds['postgres'] ?? NaN) * 1e6) / rows;

/** CPU µs per request by process group during the storm: this checkout, the baseline, and the bare loop per record. */
export function cpuPerRequestRows(r: Pick<BenchResult, 'current' | 'baseline' | 'bareCpu'>): { header: string[]; rows: string[][] } {
  const sides: Array<[string, CpuPerRequest | null | undefined]> = [
    ['this checkout', r.current?.cpu],
    ...(r.baseline ? ([[`baseline ${r.baseline.commit?.slice(0, 7) ?? ''}`, r.baseline.cpu]] as Array<[string, CpuPerRequest]>) : []),
    ['bare loop (per record)', r.bareCpu],
  ];
  const present = sides.filter((s): s is [string, CpuPerRequest] => !!s[1]);
  const groups: string[] = [];
  for (const [, cpu] of present) for (const g of cpu.groups) if (!groups.includes(g.group) && g.coreSeconds > 0.005) groups.push(g.group);
  const rows = groups.map((g) => [g, ...present.map(([, cpu]) => fixed(groupUsOf(cpu, g), 1))]);
  rows.push(['total (whole machine)', ...present.map(([, cpu]) => fixed(cpu.totalUs, 1))]);
  rows.push(["total without other people's processes", ...present.map(([, cpu]) => fixed(cpu.totalWithoutOthersUs, 1))]);
  return { header: ['CPU µs per request', ...present.map(([name]) => name)], rows };
}

/** The before/after rows: baseline, this checkout, new ÷ baseline. */
export function comparisonRows(rows: ComparisonRow[]): string[][] {
  return rows.map((c) => [c.measure, fixed(c.baseline, c.baseline !== null && Math.abs(c.baseline) < 10 ? 3 : 0), fixed(c.current, c.current !== null && Math.abs(c.current) < 10 ? 3 : 0), c.ratio === null ? '–' : `${c.ratio.toFixed(2)}× (${c.better} is better)`]);
}

const COMPARISON_HEADER = ['measure', 'baseline', 'this checkout', 'new ÷ baseline'];

/** The execution path alone: this checkout's PostgreSQL CPU per execution, and the baseline's beside it. */
function executionPathLine(x: NonNullable<BenchResult['executionPath']>): string {
  const one = (e: PgExecutionsResult) => `${int(e.postgresUsPerExecution)} µs (${fixed(e.statementsPerExecution, 2)} statements, ${fixed(e.seconds)} s)`;
  const base = x.baseline ? `; baseline ${one(x.baseline)}: ${fixed(x.current.postgresUsPerExecution / x.baseline.postgresUsPerExecution, 2)}×` : '';
  return `${one(x.current)} for ${int(x.current.executions)} executions, ${x.current.concurrency} at once${base}`;
}

/** The arrival write set alone: each build's PostgreSQL CPU per request, the median of its passes and each pass (they took turns). */
export function arrivalPathLine(x: NonNullable<BenchResult['arrivalPath']>): string {
  const mid = (a: PgArrivalsResult) => median(a.postgresUsPerRequest);
  const one = (a: PgArrivalsResult) => `${fixed(mid(a), 1)} µs (passes: ${a.postgresUsPerRequest.map((v) => fixed(v, 1)).join(', ')})`;
  const base = x.baseline ? `; baseline ${one(x.baseline)}: ${fixed(mid(x.current) / mid(x.baseline), 2)}× (medians; the builds taking turns)` : '';
  return `${one(x.current)} for ${int(x.current.requests)} requests, ${int(x.current.chunk)}/statement${base}`;
}

/** Why the run fails: each check that did not hold, in words. Empty when the run passes. */
export function verdictProblems(r: Pick<BenchResult, 'storm' | 'arbiter' | 'outcomeTopic' | 'probes' | 'executions' | 'current'> & Partial<Pick<BenchResult, 'executionPath'>>): string[] {
  const problems: string[] = [];
  const path = r.executionPath?.current;
  if (path && !executionPathClean(path)) {
    problems.push(
      `the execution path left ${path.leftOver.heldLocks} locks held, ${path.leftOver.unpublished} answers unpublished and ${path.leftOver.open} requests open after ${path.executions} executions`,
    );
  }
  const total = r.storm.requests;
  const missing = r.current?.missingFinal ?? r.arbiter.missingFinal;
  if (missing > 0) {
    problems.push(
      `${int(missing)} of ${int(total)} requests lack their final outcome (Postgres: ${int(r.arbiter.finalCount)} final; outcomes topic: ${int(r.outcomeTopic?.requestsWithFinal)} requests with a final outcome)`,
    );
  }
  if ((r.outcomeTopic?.conflicting ?? 0) > 0) problems.push(`${r.outcomeTopic.conflicting} requests have two different final outcomes on the topic, e.g. ${r.outcomeTopic.conflictExamples.join('; ')}`);
  for (const p of r.probes) if (p.missingOutcomes > 0) problems.push(`probe (${p.label}): ${p.missingOutcomes} of ${p.requests} requests got no outcome`);
  const x = r.executions;
  if (!x.ok) {
    problems.push(
      `executions ≠ distinct (resource, action, window): fleet executed ${x.executed}, EXECUTED requests ${x.executedRequests}, audited ${x.auditedExecutions}, expected ${x.expected}; same requestId executed twice: ${x.duplicateExecutions}`,
    );
  }
  return problems;
}

/** The headline figures, CPU per request and (with a baseline) the before/after table, for the terminal. */
export function benchTable(r: BenchResult): string {
  const parts = [renderTable(['measure', 'value'], headline(r), { colWidths: [46, 100] })];
  if (r.current) {
    const cpu = cpuPerRequestRows(r);
    parts.push(renderTable(cpu.header, cpu.rows));
  }
  if (r.comparison) parts.push(renderTable(COMPARISON_HEADER, comparisonRows(r.comparison)));
  return `${parts.join('\n')}\n`;
}

function cpuRows(label: string, cpu: CpuUsage | undefined, perRequests: number): string[][] {
  if (!cpu) return [];
  const rows = Object.entries(cpu.coreSeconds)
    .filter(([, s]) => s > 0.05)
    .sort((a, b) => b[1] - a[1]);
  // Busy time of the whole machine not found in a live process: processes that exited during the
  // window (Postgres backends closed by an idle pool, other people's short-lived test runs) and the kernel.
  const attributed = Object.values(cpu.coreSeconds).reduce((a, b) => a + b, 0);
  const unattributed = cpu.machineBusy * cpu.cores * cpu.wallSeconds - attributed;
  if (unattributed > 0.05) rows.push(['unattributed (exited processes, kernel)', unattributed]);
  return rows.map(([group, s]) => [label, group, fixed(s), fixed(s / cpu.wallSeconds, 2), fixed((s * 1e6) / perRequests, 0)]);
}

/** Samples thinned to about `n` rows, always keeping the last. */
function thin<T>(samples: T[], n: number): T[] {
  if (samples.length <= n) return samples;
  const step = samples.length / n;
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(samples[Math.floor(i * step)]!);
  out.push(samples[samples.length - 1]!);
  return out;
}

/** The results as Markdown, ready to paste into docs/BENCHMARKS.md. */
export function renderMarkdown(r: BenchResult): string {
  const m = r.machine;
  const a = r.arbiter;
  const out: string[] = [];
  out.push(`### Run of ${m.date.slice(0, 16).replace('T', ' ')} UTC`);
  out.push('');
  out.push('```');
  out.push(m.command);
  out.push('```');
  out.push('');
  out.push(
    mdTable(
      ['machine', ''],
      [
        ['CPU', `${m.cpu}, ${m.cores} cores`],
        ['memory', `${m.memoryGb} GB`],
        ['OS', m.os],
        ['Node.js', m.node],
        ['Java', m.java],
        ['Kafka', m.kafka],
        ['registry', m.registry],
        ['Postgres', `${m.postgres}; ${Object.entries(m.postgresSettings).map(([k, v]) => `${k}=${v}`).join(', ')}`],
        ['git', m.gitCommit],
        ['load average at start', m.loadAverageAtStart.join(', ')],
      ],
    ),
  );
  out.push('');
  out.push(mdTable(['measure', 'value'], headline(r).map(([k, v]) => [k, v])));
  out.push('');
  if (r.comparison && r.baseline) {
    const order = r.options.currentFirst ? 'this checkout ran first, the baseline second' : 'the baseline ran first, this checkout second';
    out.push(`Before and after, in this run: baseline ${r.baseline.label}${r.baseline.build ? ` (node_modules ${r.baseline.build.install}, built in ${fixed(r.baseline.build.buildSeconds)} s)` : ''} against this checkout, the same storm on the same broker and server (${order}):`);
    out.push('');
    out.push(mdTable(COMPARISON_HEADER, comparisonRows(r.comparison)));
    out.push('');
  }
  if (r.current) {
    const cpu = cpuPerRequestRows(r);
    out.push('CPU per request by process group during the storm (the load generator is the bench process):');
    out.push('');
    out.push(mdTable(cpu.header, cpu.rows));
    out.push('');
  }
  out.push('Final statuses: ' + Object.entries(a.statuses).map(([s, n]) => `${s} ${int(n)}`).join(', ') + '. Fleet violations: ' +
    Object.entries(r.executions.violations).map(([k, n]) => `${k} ${n}`).join(', ') + '.');
  out.push('');
  const x = r.executions;
  out.push(`Partitions accepted into by more than one worker (a rebalance during the run): ${x.partitionsWithSeveralOwners ?? 0}.`);
  if (x.doubled?.length) {
    out.push('');
    out.push('Resources executed more than once (coalescing missed a primary):');
    out.push('');
    out.push(mdTable(['resource', 'request', 'partition', 'accepted by', 'accepted at'], x.doubled.map((d) => [d.resourceArn.replace(/^.*\/deployment\//, '…/'), d.requestId, String(d.partition), d.acceptedBy ?? '–', d.acceptedAt])));
  }
  out.push('');
  out.push('Consumer lag and progress over time (Arbiter phase):');
  out.push('');
  out.push(
    mdTable(
      ['t (s)', 'final decisions', 'lag (records)', 'worker RSS (MiB)'],
      thin(a.samples, 24).map((s) => [fixed(s.t, 0), int(s.decided), int(s.lag), s.rssMb.map((x) => int(x)).join(' / ')]),
    ),
  );
  out.push('');
  const cpu = [
    ...(r.bare ? cpuRows('bare loop', r.bare.cpu, r.storm.requests) : []),
    ...cpuRows('arbiter', a.cpu, r.storm.requests),
    ...r.probes.flatMap((p) => cpuRows(`probe, ${p.label}`, p.cpu, p.requests)),
    ...(r.pg ? cpuRows('pg arrivals', r.pg.cpu.arrivals, r.pg.arrivals.requests) : []),
    ...(r.copy ? cpuRows('pg COPY narrow rows', r.copy.cpu, r.copy.rows) : []),
  ];
  if (cpu.length) {
    out.push(`CPU by process group (from /proc; the machine has ${m.cores} cores; "other processes" are other people's work on the same machine):`);
    out.push('');
    out.push(mdTable(['phase', 'processes', 'core-seconds', 'cores busy', 'µs CPU / request'], cpu));
    out.push('');
    out.push(`Machine busy: bare loop ${pct(r.bare?.cpu.machineBusy)}, Arbiter ${pct(a.cpu.machineBusy)}${r.pg ? `, pg arrivals ${pct(r.pg.cpu.arrivals.machineBusy)}` : ''}.`);
    out.push('');
  }
  if (r.micro) {
    out.push(
      mdTable(
        ['per-record CPU in one process', 'µs'],
        [
          ['Serde.decodeRequest (as the worker decodes)', fixed(r.micro.serdeDecodeRequestUs, 1)],
          ['Serde.encodeOutcome', fixed(r.micro.serdeEncodeOutcomeUs, 1)],
          ['ARN parse + scope rules + coalesce key', fixed(r.micro.routingAndKeyUs, 2)],
        ],
      ),
    );
    out.push('');
  }
  for (const p of r.probes) {
    out.push(
      mdTable(
        [`latency probe, ${p.label}: ${int(p.requests)} requests at ${int(p.achievedRate)}/s`, 'p50 (ms)', 'p90 (ms)', 'p99 (ms)', 'max (ms)', 'n'],
        [
          ['first decision (arbiter.decisions.latency_ms: append → decided, taken before the commit)', p.decisionLatencyMs],
          ['of which append → fetched by a worker (arbiter_fetch_delay_seconds, within its buckets)', p.fetchDelayMs ?? EMPTY_SUMMARY],
          ['append → durable + published outcome (decided at once)', p.durableOutcomeLatencyMs],
          ['append → outcome, every request (primaries include the execution)', p.allOutcomeLatencyMs],
          ...(p.sendToAppendMs ? [['before all of these: the bench\'s send → the broker\'s append (LogAppendTime)', p.sendToAppendMs]] : []),
        ].map(([label, s]) => {
          const x = s as Summary;
          return [label as string, fixed(x.p50), fixed(x.p90), fixed(x.p99), fixed(x.max), int(x.count)];
        }),
      ),
    );
    out.push('');
    out.push(`Second by second (${p.label}): ` + p.timeline.map((t) => `${t.second}s p50 ${fixed(t.p50, 0)}/p99 ${fixed(t.p99, 0)} ms`).join('; ') + '.');
    out.push('');
  }
  if (r.profile) {
    const p = r.profile;
    out.push(`CPU profile of the workers (\`node --cpu-prof\`, ${p.files.length} profiles, ${fixed(p.busyMs / 1000)} s busy, ${fixed(p.idleMs / 1000)} s idle):`);
    out.push('');
    out.push(mdTable(['self time by area', 'share', 's'], p.byArea.slice(0, 12).map((e) => [e.name, pct(e.share), fixed(e.ms / 1000)])));
    out.push('');
    out.push(mdTable(['hottest functions (self time)', 'share', 's'], p.topFunctions.slice(0, 15).map((e) => [`\`${e.name}\``, pct(e.share), fixed(e.ms / 1000)])));
    out.push('');
    out.push(mdTable(['inclusive time (synchronous segments)', 'share', 's'], p.inclusive.map((e) => [`\`${e.name}\``, pct(e.share), fixed(e.ms / 1000)])));
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
