import type { WorkerProcess } from '../support/index.ts';

export interface WorkerMetrics {
  /** Final decisions this worker has recorded (every status but ACCEPTED, DEFERRED, REROUTED). */
  finalDecisions: number;
  residentMb: number;
}

const PROGRESS_STATUSES = new Set(['ACCEPTED', 'DEFERRED', 'REROUTED']);

/** The worker's /metrics text, or null when it cannot be read (a worker stopping, restarting). */
async function metricsText(worker: WorkerProcess): Promise<string | null> {
  try {
    return await fetch(`${worker.metricsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text());
  } catch {
    return null;
  }
}

/** The value of an exposition line (`name{labels} value`). */
function sampleValue(line: string): number {
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Scrapes the worker's /metrics: cheap enough to poll every second, unlike counting rows in Postgres. */
export async function scrapeWorker(worker: WorkerProcess): Promise<WorkerMetrics | null> {
  const text = await metricsText(worker);
  if (text === null) return null;
  let finalDecisions = 0;
  let residentMb = NaN;
  for (const line of text.split('\n')) {
    if (line.startsWith('arbiter_decisions_total{')) {
      const status = /status="([^"]+)"/.exec(line)?.[1] ?? '';
      if (!PROGRESS_STATUSES.has(status)) finalDecisions += sampleValue(line);
    } else if (line.startsWith('arbiter_process_resident_memory_bytes ')) {
      residentMb = sampleValue(line) / 1024 / 1024;
    }
  }
  return { finalDecisions, residentMb };
}

/** A histogram's cumulative buckets (`le` in the metric's unit, ascending, +Inf last), count and sum. */
export interface HistogramSample {
  buckets: Array<[le: number, count: number]>;
  count: number;
  sum: number;
}

/** One histogram (without labels) of the worker's /metrics, or null when it cannot be read. */
export async function scrapeHistogram(worker: WorkerProcess, name: string): Promise<HistogramSample | null> {
  const text = await metricsText(worker);
  return text === null ? null : parseHistogram(text, name);
}

export function parseHistogram(text: string, name: string): HistogramSample | null {
  const buckets: Array<[number, number]> = [];
  let count = NaN;
  let sum = NaN;
  for (const line of text.split('\n')) {
    const value = sampleValue(line);
    if (line.startsWith(`${name}_bucket{le="`)) {
      const le = line.slice(name.length + 12, line.indexOf('"', name.length + 12));
      buckets.push([le === '+Inf' ? Infinity : Number(le), value]);
    } else if (line.startsWith(`${name}_count `)) count = value;
    else if (line.startsWith(`${name}_sum `)) sum = value;
  }
  return buckets.length ? { buckets, count, sum } : null;
}

/** What several workers' histograms gained between two samples each (same buckets), added up. */
export function histogramDelta(before: ReadonlyArray<HistogramSample | null>, after: ReadonlyArray<HistogramSample | null>): HistogramSample | null {
  let total: HistogramSample | null = null;
  after.forEach((a, i) => {
    if (!a) return;
    const b = before[i];
    const delta: HistogramSample = {
      buckets: a.buckets.map(([le, n], j) => [le, n - (b?.buckets[j]?.[1] ?? 0)]),
      count: a.count - (b?.count ?? 0),
      sum: a.sum - (b?.sum ?? 0),
    };
    total = total === null ? delta : { buckets: total.buckets.map(([le, n], j) => [le, n + delta.buckets[j]![1]]), count: total.count + delta.count, sum: total.sum + delta.sum };
  });
  return total;
}

/**
 * The q-quantile (0..1) of a histogram, interpolated linearly within its bucket as Prometheus'
 * histogram_quantile does; the highest finite bound when it falls in the +Inf bucket.
 */
export function histogramQuantile(h: HistogramSample, q: number): number {
  if (!(h.count > 0)) return NaN;
  const rank = q * h.count;
  let lower = 0;
  let below = 0;
  for (const [le, n] of h.buckets) {
    if (n >= rank) {
      if (le === Infinity) return lower;
      return lower + ((le - lower) * (rank - below)) / Math.max(1, n - below);
    }
    lower = le;
    below = n;
  }
  return lower;
}
