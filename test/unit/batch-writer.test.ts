import { describe, expect, it } from 'vitest';
import { BatchWriter } from '../../src/db/batch-writer.ts';

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('BatchWriter (group commit of single-row writes)', () => {
  it('writes a lone item at once, and items added during a write together in the next, each answered in order', async () => {
    const writes: number[][] = [];
    let release!: () => void;
    let gate = new Promise<void>((resolve) => (release = resolve));
    const writer = new BatchWriter<number, string>(
      async (items) => {
        writes.push(items);
        await gate;
        return items.map((i) => `ok ${i}`);
      },
      10,
      1,
    );
    const first = writer.add(1);
    await tick();
    expect(writes).toEqual([[1]]);
    const rest = [2, 3, 4].map((i) => writer.add(i));
    await tick();
    expect(writes).toHaveLength(1); // one write at a time: the others wait for it
    release();
    gate = Promise.resolve();
    expect(await first).toBe('ok 1');
    expect(await Promise.all(rest)).toEqual(['ok 2', 'ok 3', 'ok 4']);
    expect(writes).toEqual([[1], [2, 3, 4]]);
  });

  it('never puts two items with one conflict key in one write, and never more than maxItems', async () => {
    const writes: string[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const writer = new BatchWriter<string, boolean>(
      async (items) => {
        writes.push(items);
        await gate;
        return items.map(() => true);
      },
      3,
      1,
      (item) => item.split(':')[0]!,
    );
    const all = [writer.add('a:1')];
    await tick();
    all.push(...['a:2', 'b:1', 'a:3', 'c:1', 'd:1'].map((i) => writer.add(i)));
    release();
    await Promise.all(all);
    expect(writes).toEqual([['a:1'], ['a:2', 'b:1', 'c:1'], ['a:3', 'd:1']]);
  });

  it('a combined write that fails is tried item by item: only the bad item fails', async () => {
    const writes: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const writer = new BatchWriter<number, number>(
      async (items) => {
        writes.push(items);
        await gate;
        if (items.includes(13)) throw new Error('refused: 13');
        return items.map((i) => i * 2);
      },
      10,
      1,
    );
    const first = writer.add(1);
    await tick();
    const rest = [12, 13, 14].map((i) => writer.add(i).then((v) => v, (e: Error) => e.message));
    release();
    expect(await first).toBe(2);
    expect(await Promise.all(rest)).toEqual([24, 'refused: 13', 28]);
    expect(writes).toEqual([[1], [12, 13, 14], [12], [13], [14]]);
  });
});
