import type { WorkerProcess } from '../support/index.ts';

export interface WorkerMetrics {
  /** Final decisions this worker has recorded (every status but ACCEPTED, DEFERRED, REROUTED). */
  finalDecisions: number;
  residentMb: number;
}

const PROGRESS_STATUSES = new Set(['ACCEPTED', 'DEFERRED', 'REROUTED']);

/** Scrapes the worker's /metrics: cheap enough to poll every second, unlike counting rows in Postgres. */
export async function scrapeWorker(worker: WorkerProcess): Promise<WorkerMetrics | null> {
  try {
    const text = await fetch(`${worker.metricsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text());
    let finalDecisions = 0;
    let residentMb = NaN;
    for (const line of text.split('\n')) {
      if (line.startsWith('arbiter_decisions_total{')) {
        const status = /status="([^"]+)"/.exec(line)?.[1] ?? '';
        if (!PROGRESS_STATUSES.has(status)) finalDecisions += Number(line.slice(line.lastIndexOf(' ') + 1));
      } else if (line.startsWith('arbiter_process_resident_memory_bytes ')) {
        residentMb = Number(line.slice(line.lastIndexOf(' ') + 1)) / 1024 / 1024;
      }
    }
    return { finalDecisions, residentMb };
  } catch {
    return null;
  }
}
