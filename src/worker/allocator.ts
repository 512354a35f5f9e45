/**
 * The glibc malloc setting a worker runs with: set in the image (Dockerfile `ENV`, so compose and
 * Helm too) and by every tool that starts a worker (tools/support/worker-process.ts); a worker
 * started without it says so at start-up. It must be in the environment before Node starts, so
 * the worker cannot set it for itself.
 *
 * Why: a worker allocates and frees large Buffers all the time (fetched responses, produce
 * requests, PostgreSQL messages: 100 KiB-2 MiB). glibc serves a block that large with its own
 * mmap, but each one freed raises the threshold to its size, so from then on they come from the
 * main heap, which fragments and never shrinks: ~60 MiB of a worker's ~300 MiB peak RSS in the full
 * benchmark storm. A fixed threshold keeps them mapped and unmapped one by one: peak RSS ~20-30 MiB
 * lower, at no measurable CPU cost (docs/BENCHMARKS.md, issue 12 sixth pass).
 */
export const WORKER_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072' };

/** The settings of WORKER_MALLOC_ENV this environment lacks (set to something else counts as set). */
export function mallocSettingsMissing(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.keys(WORKER_MALLOC_ENV).filter((name) => env[name] === undefined);
}
