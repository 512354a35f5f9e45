import { describe, expect, it } from 'vitest';
import { GroupFlush } from '../../src/worker/group-flush.ts';

describe('GroupFlush (group commit of small writes)', () => {
  it('carries every caller queued during a flush in the next one, in order, and settles each caller with its flush', async () => {
    const flushes: number[][] = [];
    let release!: () => void;
    const firstHeld = new Promise<void>((r) => (release = r));
    const group = new GroupFlush<number>(async (items) => {
      flushes.push(items);
      if (flushes.length === 1) await firstHeld;
    }, 100);
    const first = group.add([1]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    const rest = [group.add([2, 3]), group.add([4]), group.add([5])];
    release();
    await Promise.all([first, ...rest]);
    expect(flushes).toEqual([[1], [2, 3, 4, 5]]);
  });

  it('carries every caller of one turn of the event loop in one flush', async () => {
    const flushes: number[][] = [];
    const group = new GroupFlush<number>(async (items) => {
      flushes.push(items);
    }, 100);
    await Promise.all([group.add([1]), group.add([2, 3]), group.add([4])]);
    await group.add([5]);
    expect(flushes).toEqual([[1, 2, 3, 4], [5]]);
  });

  it('never puts more than maxItems in a flush, never splits a caller, and rejects only the callers of a failed flush', async () => {
    const flushes: number[][] = [];
    const group = new GroupFlush<number>(async (items) => {
      flushes.push(items);
      if (items.includes(9)) throw new Error('broker away');
    }, 3);
    const results = await Promise.allSettled([group.add([1, 2]), group.add([3, 4]), group.add([9]), group.add([5, 6, 7, 8])]);
    expect(flushes).toEqual([[1, 2], [3, 4, 9], [5, 6, 7, 8]]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
  });
});
