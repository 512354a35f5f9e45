/**
 * The V8 young generation a worker runs with: semi-spaces of 8 MiB, a 16 MiB new space where Node
 * gives a 64-bit process 32. Set in the image (`ENV NODE_OPTIONS`), by Helm and compose (which set
 * NODE_OPTIONS themselves, so they say it again) and by every tool that starts a worker
 * (tools/support/worker-process.ts); a worker started without it says so at start-up. V8 sizes the
 * new space when the process starts, so the worker cannot set this for itself the way it sets
 * `worker.heapGrowingPercent` (worker/heap-policy.ts).
 *
 * Why: under a storm both semi-spaces are in use all the time, so all of the new space is resident.
 * Halving it lowered a worker's peak RSS by ~20 MiB in the full benchmark storm (268–286 against
 * 285–307 MiB, docs/BENCHMARKS.md, issue 12 sixteenth pass), where the peak had been at the 300 MiB
 * line. More scavenges of a smaller space cost the workers ~7 % more CPU there (medians), inside the
 * machine's run-to-run spread.
 */
export const WORKER_SEMI_SPACE_FLAG = '--max-semi-space-size=8';

/** The `--max-semi-space-size` this process was started with (on its command line or in NODE_OPTIONS), if any. */
export function semiSpaceFlagGiven(execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].find((flag) => flag.startsWith('--max-semi-space-size'));
}

/** Whether this process was started without any `--max-semi-space-size`. */
export function semiSpaceFlagMissing(execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): boolean {
  return semiSpaceFlagGiven(execArgv, env) === undefined;
}
