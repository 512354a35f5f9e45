import { describe, expect, it } from 'vitest';
import { ArrivalGroup, type ArrivalBatch } from '../../src/audit/arrival-group.ts';
import type { ArrivalWrite, KnownRequest } from '../../src/audit/index.ts';

const batch = (...ids: string[]): ArrivalBatch => ({ arrivals: ids.map((id) => ({ request: { requestId: id } }) as never), deadLetters: [] });
const idsOf = (b: ArrivalBatch) => b.arrivals.map((a) => a.request.requestId);
/** Lets the group start the write it scheduled for the event loop's next turn. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const known = (id: string): KnownRequest => ({ topic: 't', partition: 0, request: { requestId: id } as never, answer: null });

describe('ArrivalGroup (group commit of arrival writes)', () => {
  it('writes the chunks handed in during one turn of the event loop in one statement (the partitions of one fetch)', async () => {
    const writes: string[][] = [];
    const group = new ArrivalGroup(async (b) => {
      writes.push(idsOf(b));
      return { kind: 'written', fresh: new Set(idsOf(b)) };
    }, 2);
    await Promise.all([group.add(batch('a')), group.add(batch('b', 'c')), group.add(batch('d'))]);
    expect(writes).toEqual([['a', 'b', 'c', 'd']]);
    await group.add(batch('e'));
    expect(writes).toEqual([['a', 'b', 'c', 'd'], ['e']]);
  });

  it('writes a lone chunk on the next turn, and the chunks that arrive meanwhile together in the next statement', async () => {
    const writes: string[][] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const group = new ArrivalGroup(async (b) => {
      writes.push(idsOf(b));
      if (writes.length === 1) await held;
      return { kind: 'written', fresh: new Set(idsOf(b)) };
    }, 1);
    const first = group.add(batch('a'));
    await nextTurn();
    const later = [group.add(batch('b', 'c')), group.add(batch('d'))];
    release();
    const results = await Promise.all([first, ...later]);
    expect(writes).toEqual([['a'], ['b', 'c', 'd']]);
    for (const r of results) expect(r.kind).toBe('written');
  });

  it('a combined write that meets known ids: each chunk is told its own; a chunk with none is written again alone', async () => {
    const writes: string[][] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const group = new ArrivalGroup(async (b): Promise<ArrivalWrite> => {
      writes.push(idsOf(b));
      if (writes.length === 1) await held;
      if (idsOf(b).includes('x')) return { kind: 'known', known: new Map([['x', known('x')]]) };
      return { kind: 'written', fresh: new Set(idsOf(b)) };
    }, 1);
    const first = group.add(batch('a'));
    await nextTurn();
    const withKnown = group.add(batch('b', 'x'));
    const clean = group.add(batch('c'));
    release();
    await first;
    const [k, c] = await Promise.all([withKnown, clean]);
    expect(k.kind === 'known' && [...k.known.keys()]).toEqual(['x']);
    expect(c.kind === 'written' && [...c.fresh]).toEqual(['c']);
    expect(writes).toEqual([['a'], ['b', 'x', 'c'], ['c']]);
  });

  it('a combined write PostgreSQL refuses is retried chunk by chunk: only the chunk with the bad record fails', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let calls = 0;
    const group = new ArrivalGroup(async (b): Promise<ArrivalWrite> => {
      if (++calls === 1) await held;
      if (idsOf(b).includes('bad')) throw new Error('invalid byte sequence');
      return { kind: 'written', fresh: new Set(idsOf(b)) };
    }, 1);
    const first = group.add(batch('a'));
    await nextTurn();
    const settled = Promise.allSettled([group.add(batch('b')), group.add(batch('bad')), group.add(batch('c'))]);
    release();
    await first;
    expect((await settled).map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});
