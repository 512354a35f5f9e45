import v8 from 'node:v8';

/**
 * Sets how far V8 grows the heap between full collections (`--heap-growing-percent`), for this
 * process, before the worker allocates anything much.
 *
 * Why: a worker streams records through short-lived objects and keeps little alive (~80 MiB in a
 * 1,000,000-request storm). Left to itself, V8 lets the old generation grow up to 4× past that on a
 * machine with plenty of memory (peak RSS ~470 MiB), and only ~1.3× when --max-old-space-size is
 * container-sized (collections then cost ~50 % more worker CPU). One explicit factor gives a
 * bounded heap either way (docs/BENCHMARKS.md, issue 12).
 *
 * Set at run time because NODE_OPTIONS refuses this V8 flag, and the worker is started by the
 * image, Helm, compose and `npx arbiter worker` alike. V8 reads it at every collection; a test
 * (test/unit/heap-policy.test.ts) checks that setting it this way still bounds the heap.
 */
export function applyHeapPolicy(heapGrowingPercent: number): boolean {
  if (heapGrowingPercent <= 0) return false;
  v8.setFlagsFromString(`--heap-growing-percent=${heapGrowingPercent}`);
  return true;
}
