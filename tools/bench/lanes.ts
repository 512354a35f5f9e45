import { progressBar } from './progress.ts';

/**
 * Runs `work` over [0, total) in chunks of `chunk`, `count` lanes at a time (as many as the
 * connections a pass has), with a progress bar; resolves with the seconds it took.
 */
export async function lanes(count: number, total: number, chunk: number, label: string, work: (from: number, to: number) => Promise<void>): Promise<number> {
  const bar = progressBar(label, total);
  let next = 0;
  let done = 0;
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: count }, async () => {
        while (next < total) {
          const from = next;
          const to = Math.min(total, from + chunk);
          next = to;
          await work(from, to);
          done += to - from;
          bar.update(done);
        }
      }),
    );
  } finally {
    bar.stop();
  }
  return (performance.now() - started) / 1000;
}
