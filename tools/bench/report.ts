import { renderTable } from '../../src/cli/index.ts';
import { markdownTable as mdTable } from '../support/index.ts';
import type { CpuUsage } from './proc.ts';
import type { BenchResult } from './run.ts';
import type { Summary } from './stats.ts';

const int = (n: number | undefined | null) => (n === undefined || n === null || !Number.isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US'));
const fixed = (n: number | undefined | null, d = 1) => (n === undefined || n === null || !Number.isFinite(n) ? '–' : n.toFixed(d));
const pct = (n: number | undefined | null) => (n === undefined || n === null || !Number.isFinite(n) ? '–' : `${(n * 100).toFixed(1)} %`);
const latency = (s: Summary | undefined) => (s && s.count ? `p50 ${fixed(s.p50)} / p99 ${fixed(s.p99)} / max ${fixed(s.max)} ms (n=${int(s.count)})` : '–');
const yesNo = (b: boolean | null) => (b === null ? 'not measured' : b ? 'yes' : 'no');

/** The headline rows, shared by the terminal table and the Markdown. */
function headline(r: BenchResult): Array<[string, string]> {
  const a = r.arbiter;
  return [
    ['storm', `${int(r.storm.requests)} requests over ${int(r.storm.distinctPods)} pods (~${fixed(r.storm.duplicatesPerPod, 0)} duplicates each), ${r.options.workers} workers, ${r.options.partitions} partitions`],
    ['worker config (over the defaults)', JSON.stringify(r.workerConfig)],
    ['loader (kafkajs producer, acks=-1)', `${int(r.load.recordsPerSecond)} records/s`],
    ['ceiling: bare kafkajs consume→produce loop', r.bare ? `${int(r.bare.recordsPerSecond)} records/s (${fixed(r.bare.seconds)} s, ${r.bare.processes} processes)` : 'skipped'],
    ['ceiling: Postgres bulk insert, decisions rows', r.pg ? `${int(r.pg.decisions.rowsPerSecond)} rows/s (unnest, ${int(r.pg.decisions.chunk)} rows/statement, ${r.pg.connections} connections)` : 'skipped'],
    ["ceiling: Postgres, Arbiter's arrival write set", r.pg ? `${int(r.pg.arrivals.requestsPerSecond)} requests/s (recordArrivals + markPublished, ${int(r.pg.arrivals.chunk)}/txn); without markPublished ${int(r.pg.arrivalsWithoutFlag.requestsPerSecond)}/s` : 'skipped'],
    ['Arbiter end-to-end (decided + audited)', `${int(a.requestsPerSecond)} requests/s (${fixed(a.seconds)} s; steady 10→90 %: ${int(a.steadyRequestsPerSecond)}/s)`],
    ['ratio to bare kafkajs loop', r.ratioToBareLoop === null ? '–' : `${fixed(r.ratioToBareLoop, 3)}× (target ≥ 0.5×: ${yesNo(r.verdict.ratioTargetMet)})`],
    ['all outcomes on the outcomes topic after last decision', `+${fixed(a.publishLagSeconds)} s (${int(a.outcomeRecords)} outcome records; outbox flags left unset: ${int(a.outboxUnflagged)})`],
    ['storm decision latency (backlog queueing)', latency(a.decisionLatencyMs)],
    ...r.probes.flatMap((p): Array<[string, string]> => [
      [`probe (${p.label}) @ ${int(p.achievedRate)} req/s: first decision`, `${latency(p.decisionLatencyMs)} (p99 < 50 ms: ${p.decisionLatencyMs.p99 < 50 ? 'yes' : 'no'})`],
      [`probe (${p.label}): append → durable + published outcome`, latency(p.durableOutcomeLatencyMs)],
    ]),
    ['peak worker RSS (VmHWM)', a.peakRssMb.map((m) => `${int(m)} MiB`).join(', ')],
    ['requests without a final outcome', int(a.missingFinal)],
    [
      'executions: fleet / EXECUTED requests / audited / expected',
      `${int(r.executions.executed)} / ${int(r.executions.executedRequests)} / ${int(r.executions.auditedExecutions)} (${int(r.executions.recoveredExecutions)} recovered) / ${int(r.executions.expected)}, same requestId twice: ${r.executions.duplicateExecutions} → ${r.executions.ok ? 'OK' : 'FAILED'}`,
    ],
  ];
}

/** The headline figures, for the terminal. */
export function benchTable(r: BenchResult): string {
  return `${renderTable(['measure', 'value'], headline(r), { colWidths: [46, 100] })}\n`;
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
    ...(r.pg ? cpuRows('pg arrivals, no flag', r.pg.cpu.arrivalsWithoutFlag, r.pg.arrivals.requests) : []),
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
          ['append → durable + published outcome (decided at once)', p.durableOutcomeLatencyMs],
          ['append → outcome, every request (primaries include the execution)', p.allOutcomeLatencyMs],
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
