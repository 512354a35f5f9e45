import type { Kafka, Message } from 'kafkajs';
import type pg from 'pg';
import { benchConnection } from './arbiter-run.ts';
import { cpuBetween, cpuSnapshot, type CpuUsage, type PidGroup } from './proc.ts';
import { note, progressBar } from './progress.ts';
import { EMPTY_SUMMARY, sleep, summarize, type Summary } from './stats.ts';
import { stormMessage, type EncodedStorm } from './storm.ts';
import type { WorkerProcess } from '../support/index.ts';
import { histogramDelta, histogramQuantile, scrapeHistogram, type HistogramSample } from './worker-metrics.ts';

export interface ProbeOptions {
  label: string;
  kafka: Kafka;
  db: pg.Pool;
  requestsTopic: string;
  outcomesTopic: string;
  groupPrefix: string;
  records: EncodedStorm;
  ratePerSecond: number;
  timeoutMs: number;
  /** Processes whose CPU to account for during the probe, given the bench's own PostgreSQL backends. */
  pidGroups: (benchBackends: number[]) => PidGroup[];
  /** The workers, whose arbiter_fetch_delay_seconds is read before and after. */
  workers: readonly WorkerProcess[];
}

export interface ProbeSecond {
  /** Second of the probe (by send time). */
  second: number;
  decisions: number;
  p50: number;
  p99: number;
}

export interface ProbeResult {
  label: string;
  requests: number;
  targetRate: number;
  /** What was actually produced per second. */
  achievedRate: number;
  /** latency_ms of the first decision, as the worker records it (append to Kafka → decision made, before its commit). */
  decisionLatencyMs: Summary;
  /**
   * Append of the request → its outcome record appended by the worker, for requests decided at once
   * (coalesced into a finished primary): the decision is durable in Postgres *and* published.
   */
  durableOutcomeLatencyMs: Summary;
  /** The same for every request, including primaries, whose outcome waits for the execution. */
  allOutcomeLatencyMs: Summary;
  /**
   * The load generator's send → the broker's append (the requests topic stamps LogAppendTime): the
   * part before "append" that the figures above leave out. Absent from results saved before it was measured.
   */
  sendToAppendMs?: Summary;
  /**
   * Append → fetched by a worker (the workers' arbiter_fetch_delay_seconds over the probe,
   * interpolated within its buckets; no max): the part of the first decision's latency spent
   * before the worker had the record. Absent from results saved before it was measured (--from-json).
   */
  fetchDelayMs?: Summary;
  missingOutcomes: number;
  /** First-decision latency second by second, to tell a start-up spike from a steady state. */
  timeline: ProbeSecond[];
  /** When the first request was sent (epoch ms): second 0 of the timeline, to line it up with the workers' logs. */
  startedAt?: number;
  /** CPU from the first request sent until the last one was final. */
  cpu: CpuUsage;
}

/**
 * p99 decision latency at a steady rate (default 1,000 requests/s) against the same, now idle, workers:
 * the probe's own pods, ~100 duplicates each as in the storm, produced at the target pace, one send
 * per 10 ms tick. Latency is read from Postgres (the workers' own measure) and from the outcomes topic.
 */
export async function runLatencyProbe(options: ProbeOptions): Promise<ProbeResult> {
  const { records } = options;
  const ids = records.requestIds!;
  const sentAt = new Float64Array(records.count);
  const index = new Map(ids.map((id, j) => [id, j]));
  const outcomeAt = new Float64Array(records.count);
  // Each request's append, as the broker stamped it; a fetched request is known by its value's bytes.
  const appendAt = new Float64Array(records.count);
  const byValue = new Map(Array.from({ length: records.count }, (_, j) => [records.values[j]!.toString('latin1'), j]));

  // Follow the outcomes topic, and the requests topic for the appends, from their current ends, before
  // the first request is sent. An outcome's time is its record's timestamp (the broker's append: the
  // bench's outcomes topic stamps LogAppendTime), not when the bench reads it: so the bench reads in
  // large, rare fetches and commits nothing, instead of ~100 fetches and offset commits a second
  // that took CPU from the 2-core machine the workers and the broker share.
  const consumer = options.kafka.consumer({
    groupId: `${options.groupPrefix}-probe-${options.label.replace(/\W+/g, '-')}`,
    minBytes: OUTCOME_FETCH_MIN_BYTES,
    maxWaitTimeInMs: OUTCOME_FETCH_MAX_WAIT_MS,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [options.outcomesTopic, options.requestsTopic], fromBeginning: false });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  let outcomes = 0;
  let appended = 0;
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      if (batch.topic === options.requestsTopic) {
        for (const m of batch.messages) {
          const j = m.value ? byValue.get(m.value.toString('latin1')) : undefined;
          if (j !== undefined && !appendAt[j]) {
            appendAt[j] = Number(m.timestamp);
            appended++;
          }
        }
        return;
      }
      for (const m of batch.messages) {
        const id = m.headers?.['arbiter-request-id']?.toString();
        const j = id === undefined ? undefined : index.get(id);
        if (j !== undefined && !outcomeAt[j]) {
          outcomeAt[j] = Number(m.timestamp);
          outcomes++;
        }
      }
    },
  });
  await joined;
  await sleep(1_000); // the first fetch resolves the "latest" offset

  const fetchDelayBefore = await Promise.all(options.workers.map((w) => scrapeHistogram(w, FETCH_DELAY)));
  const producer = options.kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
  await producer.connect();
  const bar = progressBar(`probe ${options.label}`.slice(0, 14), records.count);
  const sends: Promise<unknown>[] = [];
  // The completion checks below run on a connection of the bench's own: its CPU is the bench's.
  const checker = await benchConnection(options.db);
  const groups = options.pidGroups([checker.backendPid]);
  const cpuBefore = cpuSnapshot(groups);
  const started = Date.now();
  let sent = 0;
  let achievedRate: number;
  let cpu: CpuUsage;
  try {
    try {
      while (sent < records.count) {
        const due = Math.min(records.count, Math.floor(((Date.now() - started) / 1000) * options.ratePerSecond));
        if (due > sent) {
          const messages: Message[] = [];
          const now = Date.now();
          for (; sent < due; sent++) {
            sentAt[sent] = now;
            messages.push(stormMessage(records, sent, now));
          }
          sends.push(producer.send({ topic: options.requestsTopic, acks: -1, messages }));
          bar.update(sent);
        }
        await sleep(10);
      }
      await Promise.all(sends);
    } finally {
      bar.stop();
      await producer.disconnect();
    }
    achievedRate = records.count / ((Date.now() - started) / 1000);

    const until = Date.now() + options.timeoutMs;
    while (Date.now() < until) {
      const { rows } = await checker.client.query('SELECT count(DISTINCT request_id)::int AS n FROM arbiter.decisions WHERE final AND request_id = ANY($1::uuid[])', [ids]);
      if (rows[0].n >= records.count && outcomes >= records.count && appended >= records.count) break;
      await sleep(250);
    }
    cpu = cpuBetween(cpuBefore, cpuSnapshot(groups));
  } finally {
    // Also when the probe fails: a connection still checked out would hold up the pool's end.
    await checker.release();
  }
  const fetchDelay = histogramDelta(fetchDelayBefore, await Promise.all(options.workers.map((w) => scrapeHistogram(w, FETCH_DELAY))));
  await consumer.disconnect();
  if (outcomes < records.count) note(`probe: ${records.count - outcomes} outcomes not seen within ${options.timeoutMs / 1000} s`);

  // Requests decided at once: their first decision is already final and not waiting on an in-flight primary.
  const { rows } = await options.db.query(
    `SELECT request_id, final, detail, latency_ms FROM (
       SELECT DISTINCT ON (request_id) request_id, final, detail, latency_ms FROM arbiter.decisions
        WHERE request_id = ANY($1::uuid[]) ORDER BY request_id, decided_at) d`,
    [ids],
  );
  const immediate = new Set(rows.filter((r) => r.final && !String(r.detail ?? '').endsWith('in flight')).map((r) => r.request_id as string));
  const { all, durable, sendToAppend } = outcomeLatencies({ sentAt, appendAt, outcomeAt }, (j) => immediate.has(ids[j]!));
  if (appended < records.count) note(`probe: ${records.count - appended} requests' appends not seen: their outcomes count from the send`);
  const perSecond = new Map<number, number[]>();
  const decisionMs: number[] = [];
  for (const r of rows) {
    if (r.latency_ms === null) continue;
    const ms = Number(r.latency_ms);
    decisionMs.push(ms);
    const second = Math.floor((sentAt[index.get(r.request_id as string)!]! - started) / 1000);
    perSecond.set(second, [...(perSecond.get(second) ?? []), ms]);
  }
  const timeline = [...perSecond.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([second, values]) => {
      const s = summarize(values);
      return { second, decisions: s.count, p50: s.p50, p99: s.p99 };
    });
  return {
    label: options.label,
    requests: records.count,
    targetRate: options.ratePerSecond,
    achievedRate,
    decisionLatencyMs: summarize(decisionMs),
    durableOutcomeLatencyMs: summarize(durable),
    allOutcomeLatencyMs: summarize(all),
    sendToAppendMs: summarize(sendToAppend),
    fetchDelayMs: fetchDelay ? histogramSummaryMs(fetchDelay) : EMPTY_SUMMARY,
    missingOutcomes: records.count - outcomes,
    timeline,
    startedAt: started,
    cpu,
  };
}

/**
 * Each request's time to its outcome record, from its append (as the workers measure a decision), or
 * from its send when the bench did not see the append; and the send → append of each it saw. Times
 * are epoch ms, 0 where unknown; `decidedAtOnce` picks the requests whose first decision was final.
 */
export function outcomeLatencies(
  times: { sentAt: Float64Array; appendAt: Float64Array; outcomeAt: Float64Array },
  decidedAtOnce: (j: number) => boolean,
): { all: number[]; durable: number[]; sendToAppend: number[] } {
  const { sentAt, appendAt, outcomeAt } = times;
  const all: number[] = [];
  const durable: number[] = [];
  const sendToAppend: number[] = [];
  for (let j = 0; j < sentAt.length; j++) {
    if (appendAt[j]) sendToAppend.push(appendAt[j]! - sentAt[j]!);
    if (!outcomeAt[j]) continue;
    const ms = outcomeAt[j]! - (appendAt[j] || sentAt[j]!);
    all.push(ms);
    if (decidedAtOnce(j)) durable.push(ms);
  }
  return { all, durable, sendToAppend };
}

const FETCH_DELAY = 'arbiter_fetch_delay_seconds';
/** The probe's outcome reader: the broker answers a fetch once it holds this much, or after the wait. */
const OUTCOME_FETCH_MIN_BYTES = 256 * 1024;
const OUTCOME_FETCH_MAX_WAIT_MS = 250;

function histogramSummaryMs(h: HistogramSample): Summary {
  const ms = (q: number) => histogramQuantile(h, q) * 1000;
  return { count: h.count, p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), max: NaN, mean: h.count > 0 ? (h.sum / h.count) * 1000 : NaN };
}
