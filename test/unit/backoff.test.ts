import { describe, expect, it } from 'vitest';
import { backoffMs, retryWithBackoff } from '../../src/contract/backoff.ts';

describe('retryWithBackoff', () => {
  it('tries again after each failure tryAgain accepts, waiting backoffMs(attempt), and returns the first success', async () => {
    const seen: Array<[number, number]> = [];
    let calls = 0;
    const started = Date.now();
    const result = await retryWithBackoff(
      async () => {
        if (++calls < 3) throw new Error(`fail ${calls}`);
        return 'done';
      },
      (_error, attempt, waitMs) => {
        seen.push([attempt, waitMs]);
        return true;
      },
    );
    expect(result).toBe('done');
    expect(seen).toEqual([[1, backoffMs(1)], [2, backoffMs(2)]]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(backoffMs(1) + backoffMs(2) - 5);
  });

  it('throws the error tryAgain refuses, without waiting or calling again', async () => {
    let calls = 0;
    const error = await retryWithBackoff(
      async () => {
        calls++;
        throw new Error('permanent');
      },
      () => false,
    ).catch((e: unknown) => e);
    expect((error as Error).message).toBe('permanent');
    expect(calls).toBe(1);
  });

  it('backs off from 100 ms, doubling, capped at 5 s', () => {
    expect([1, 2, 3, 6, 7, 20].map(backoffMs)).toEqual([100, 200, 400, 3_200, 5_000, 5_000]);
  });
});
