import { describe, expect, it } from 'vitest';
import { OffsetCommitter } from '../../src/worker/offset-committer.ts';

const deferred = () => {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined);
  return { promise, resolve, reject };
};

describe('OffsetCommitter (commit once delivered, apart from the fetch loop)', () => {
  it('commits a partition only up to the last chunk delivered with every chunk before it, as the next offset to read', async () => {
    const commits: Array<Array<{ partition: number; offset: string }>> = [];
    const committer = new OffsetCommitter('t', async (o) => void commits.push(o.map(({ partition, offset }) => ({ partition, offset }))), () => undefined);
    const [a, b, c] = [deferred(), deferred(), deferred()];
    await committer.add(0, '9', a.promise);
    await committer.add(0, '19', b.promise);
    await committer.add(1, '4', c.promise);
    b.resolve(); // delivered out of order: nothing of partition 0 is committed before chunk 9 is
    c.resolve();
    await new Promise((r) => setTimeout(r, 0));
    await committer.commitDelivered();
    expect(commits).toEqual([[{ partition: 1, offset: '5' }]]);
    a.resolve();
    await committer.flush();
    expect(commits[1]).toEqual([{ partition: 0, offset: '20' }]);
    await committer.commitDelivered();
    expect(commits).toHaveLength(2); // nothing new: no commit
  });

  it('never commits past a chunk whose delivery failed, and forgets a partition that moved', async () => {
    const commits: string[] = [];
    const committer = new OffsetCommitter('t', async (o) => void commits.push(...o.map((x) => `${x.partition}:${x.offset}`)), () => undefined);
    const failed = deferred();
    await committer.add(0, '9', Promise.resolve());
    await committer.add(0, '19', failed.promise);
    await committer.add(0, '29', Promise.resolve());
    failed.reject(new Error('shutting down'));
    await committer.add(2, '3', Promise.resolve());
    committer.forget(2);
    await committer.flush();
    expect(commits).toEqual(['0:10']);
  });

  it('a chunk delivered while a commit is on its way is committed by the next one (the storm-tail stall)', async () => {
    const commits: string[] = [];
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    let calls = 0;
    const committer = new OffsetCommitter(
      't',
      async (o) => {
        commits.push(...o.map((x) => `${x.partition}:${x.offset}`));
        if (++calls === 1) await slow;
      },
      () => undefined,
    );
    await committer.add(0, '9', Promise.resolve());
    await new Promise((r) => setTimeout(r, 0));
    const first = committer.commitDelivered(); // sends 0:10 and waits for the broker
    await new Promise((r) => setTimeout(r, 0));
    await committer.add(0, '19', Promise.resolve()); // the last chunk, delivered meanwhile
    await new Promise((r) => setTimeout(r, 0));
    release();
    await first;
    await committer.commitDelivered();
    expect(commits).toEqual(['0:10', '0:20']);
  });
});
