import { dropDatabase } from '../support/index.ts';
import { measuredPass, stormRows, writeArrivalSet, type PgCeilingOptions } from './pg-ceiling.ts';
import type { loadBuild } from './pg-executions.ts';

/**
 * PostgreSQL's cost of the arrival write set alone, this checkout's against the baseline's, on the
 * same server in the same minute: the same storm rows (1 in ~100 accepted, the rest coalesced, as
 * decided by this checkout's arrival rules), written by each build's own AuditStore into a fresh
 * database its own migrations made. The builds take turns (A B A B ...), so a machine that drifts
 * over minutes weighs on both; the storm arms, minutes apart, cannot tell a tenth of PostgreSQL's
 * CPU from that drift.
 */
export interface PgArrivalsResult {
  label: string;
  /** Requests per pass. */
  requests: number;
  chunk: number;
  /** PostgreSQL CPU (every server process) per request, one value per pass. */
  postgresUsPerRequest: number[];
  /** Wall time per pass. */
  seconds: number[];
}

type Build = Awaited<ReturnType<typeof loadBuild>>;

/** The ceiling's settings (same storm, server and connections), with one chunk size: requests per statement. */
export type PgArrivalsOptions = Omit<PgCeilingOptions, 'bulkChunk' | 'arrivalChunk'> & { chunk: number };

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Each build's passes, in turns; a build that cannot run the pass (its API is older) is left out by the caller. */
export async function runPgArrivals(builds: Build[], options: PgArrivalsOptions, passes: number): Promise<PgArrivalsResult[]> {
  const results = builds.map((b): PgArrivalsResult => ({ label: b.label, requests: options.requests, chunk: options.chunk, postgresUsPerRequest: [], seconds: [] }));
  // Every pass writes the same rows.
  const storm = stormRows(options);
  try {
    for (let pass = 0; pass < passes; pass++) {
      for (const [i, build] of builds.entries()) {
        const { seconds, cpu } = await measuredPass(build, options, storm, {
          label: `pg arr ${build.label}`.slice(0, 14),
          chunk: options.chunk,
          checkpointFirst: true,
          write: (audit, rows) => writeArrivalSet(audit, rows),
        });
        results[i]!.postgresUsPerRequest.push(((cpu.coreSeconds.postgres ?? 0) * 1e6) / options.requests);
        results[i]!.seconds.push(seconds);
      }
    }
    return results;
  } finally {
    if (!options.keep) await dropDatabase(options.databaseUrl);
  }
}
