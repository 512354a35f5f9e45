import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { histogramDelta, histogramQuantile, parseHistogram } from '../../tools/bench/worker-metrics.ts';

/** The bench reads a worker's histogram from /metrics and takes quantiles of what a probe added. */
describe('bench: histograms scraped from the workers', () => {
  async function exposition(observations: number[]): Promise<string> {
    const registry = new client.Registry();
    const h = new client.Histogram({ name: 'x_seconds', help: 'x', buckets: [0.01, 0.02, 0.05, 0.1], registers: [registry] });
    for (const v of observations) h.observe(v);
    return registry.metrics();
  }

  it('parses the cumulative buckets, the count and the sum of one histogram', async () => {
    const h = parseHistogram(await exposition([0.005, 0.015, 0.015, 0.07, 3]), 'x_seconds')!;
    expect(h.buckets).toEqual([[0.01, 1], [0.02, 3], [0.05, 3], [0.1, 4], [Infinity, 5]]);
    expect(h.count).toBe(5);
    expect(h.sum).toBeCloseTo(3.105);
    expect(parseHistogram(await exposition([]), 'y_seconds')).toBeNull();
  });

  it('adds up what each worker gained between two scrapes', async () => {
    const before = [parseHistogram(await exposition([0.005]), 'x_seconds'), null];
    const after = [parseHistogram(await exposition([0.005, 0.015, 0.03]), 'x_seconds'), parseHistogram(await exposition([0.2]), 'x_seconds')];
    const delta = histogramDelta(before, after)!;
    expect(delta.count).toBe(3);
    expect(delta.buckets).toEqual([[0.01, 0], [0.02, 1], [0.05, 2], [0.1, 2], [Infinity, 3]]);
    expect(delta.sum).toBeCloseTo(0.245);
  });

  it('interpolates a quantile within its bucket as histogram_quantile does', async () => {
    // 10 observations: 4 up to 10 ms, 4 in (10, 20], 2 in (50, 100].
    const h = parseHistogram(await exposition([0.001, 0.002, 0.003, 0.004, 0.011, 0.012, 0.013, 0.014, 0.06, 0.09]), 'x_seconds')!;
    expect(histogramQuantile(h, 0.4)).toBeCloseTo(0.01);
    expect(histogramQuantile(h, 0.5)).toBeCloseTo(0.0125);
    expect(histogramQuantile(h, 0.9)).toBeCloseTo(0.075);
    // In the +Inf bucket: the highest finite bound.
    const tail = parseHistogram(await exposition([0.001, 5]), 'x_seconds')!;
    expect(histogramQuantile(tail, 0.99)).toBe(0.1);
    expect(histogramQuantile({ buckets: [], count: 0, sum: 0 }, 0.5)).toBeNaN();
  });
});
