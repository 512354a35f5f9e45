import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const POLICY = fileURLToPath(new URL('../../src/worker/heap-policy.ts', import.meta.url));

/**
 * A worker-shaped heap in a child process: ~40 MB kept alive, and a stream of short-lived batches
 * that each stay alive for a while (as records do between fetch and delivery). Returns the largest
 * heap V8 committed meanwhile.
 */
const CHURN = `
  const { applyHeapPolicy } = await import(${JSON.stringify(POLICY)});
  const percent = Number(process.env.PERCENT);
  if (percent) applyHeapPolicy(percent);
  const live = [];
  for (let i = 0; i < 400000; i++) live.push({ a: i, b: 'x' + i, c: [i] });
  let keep = [];
  let peak = 0;
  for (let r = 0; r < 3000; r++) {
    const batch = [];
    for (let i = 0; i < 2000; i++) batch.push({ a: i, b: 'y' + i + r, c: [i, r] });
    keep.push(batch);
    if (keep.length > 40) keep.shift();
    if (r % 20 === 0) peak = Math.max(peak, process.memoryUsage().heapTotal);
  }
  console.log(JSON.stringify({ peakMb: peak / 1048576, kept: live.length + keep.length }));
`;

async function peakHeapMb(percent: number): Promise<number> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHURN], { env: { ...process.env, PERCENT: String(percent) }, timeout: 60_000 });
  return (JSON.parse(stdout.trim().split('\n').pop()!) as { peakMb: number }).peakMb;
}

describe('applyHeapPolicy', () => {
  it('bounds how far the heap grows past what is kept alive (set at run time, as the worker does)', async () => {
    const [free, bounded] = await Promise.all([peakHeapMb(0), peakHeapMb(50)]);
    // Measured here: ~246 MB left to V8, ~125 MB at 50 %.
    expect(bounded).toBeLessThan(free * 0.75);
  }, 120_000);

  it('0 leaves V8 alone', async () => {
    const { applyHeapPolicy } = await import('../../src/worker/heap-policy.ts');
    expect(applyHeapPolicy(0)).toBe(false);
  });
});
