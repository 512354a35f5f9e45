import { describe, expect, it } from 'vitest';
import { outcomeLatencies } from '../../tools/bench/latency-probe.ts';

describe('the probe\u2019s outcome latencies', () => {
  const times = {
    // Sent at 1,000 ms; the broker appended the first two 12 and 30 ms later and the bench missed the third's append.
    sentAt: Float64Array.from([1_000, 1_000, 1_000, 1_000]),
    appendAt: Float64Array.from([1_012, 1_030, 0, 1_005]),
    // The last request has no outcome yet.
    outcomeAt: Float64Array.from([1_050, 1_100, 1_070, 0]),
  };

  it('runs from the broker\u2019s append, and from the send only where the append was not seen', () => {
    const { all } = outcomeLatencies(times, () => true);
    expect(all).toEqual([38, 70, 70]);
  });

  it('keeps the requests decided at once apart, and reports each seen send \u2192 append', () => {
    const { durable, sendToAppend } = outcomeLatencies(times, (j) => j !== 1);
    expect(durable).toEqual([38, 70]);
    expect(sendToAppend).toEqual([12, 30, 5]);
  });
});
