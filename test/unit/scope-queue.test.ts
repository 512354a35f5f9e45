import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/worker/clock.ts';
import { ScopeQueue, type Schedulable, type StepResult } from '../../src/worker/scope-queue.ts';

/** Time that moves only when the test says so: every assertion about waiting is exact. */
class FakeClock implements Clock {
  private t = 1_000;
  private timers: Array<{ at: number; fire: () => void }> = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const timer = {
        at: this.t + Math.max(1, ms),
        fire: () => {
          this.timers = this.timers.filter((x) => x !== timer);
          resolve();
        },
      };
      this.timers.push(timer);
      signal.addEventListener('abort', timer.fire, { once: true });
    });
  }

  /** Moves time forward, firing each timer at its own instant and letting the queues react. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await settle();
    for (;;) {
      const next = this.timers.filter((x) => x.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.t = next.at;
      next.fire();
      await settle();
    }
    this.t = target;
    await settle();
  }
}

/** Lets every pending promise chain run (the queue's loop is all microtasks under a fake clock). */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

interface Entry extends Schedulable {
  name: string;
}

const entry = (name: string, notBefore = 0): Entry => ({ name, notBefore, retryAt: 0 });

interface Harness {
  queue: ScopeQueue<Entry>;
  clock: FakeClock;
  /** Every step call, in order, with its start and end (fake) times. */
  calls: { name: string; start: number; end: number }[];
  settled: string[];
  idle: number;
}

const queues: ScopeQueue<Entry>[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

function harness(
  behaviour: (e: Entry, attempt: number, clock: FakeClock) => Promise<StepResult> | StepResult,
  { recheckMs = 50, clock = new FakeClock() }: { recheckMs?: number; clock?: FakeClock } = {},
): Harness {
  const attempts = new Map<Entry, number>();
  const h: Harness = { calls: [], settled: [], idle: 0, clock, queue: undefined as unknown as ScopeQueue<Entry> };
  h.queue = new ScopeQueue<Entry>('scope', {
    step: async (e) => {
      const attempt = (attempts.get(e) ?? 0) + 1;
      attempts.set(e, attempt);
      const call = { name: e.name, start: clock.now(), end: Number.NaN };
      h.calls.push(call);
      try {
        return await behaviour(e, attempt, clock);
      } finally {
        call.end = clock.now();
      }
    },
    settled: (e) => h.settled.push(e.name),
    idle: () => h.idle++,
    clock,
    recheckMs,
  });
  queues.push(h.queue);
  return h;
}

const never = () => new AbortController().signal;

describe('ScopeQueue (fake clock)', () => {
  it('runs entries one at a time, in arrival order', async () => {
    let running = 0;
    let maxRunning = 0;
    const h = harness(async (_e, _n, clock): Promise<StepResult> => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await clock.sleep(10, never());
      running--;
      return 'done';
    });
    for (const name of ['a', 'b', 'c', 'd']) h.queue.push(entry(name));
    expect(h.queue.size).toBe(4);
    await h.clock.advance(40);
    expect(h.settled).toEqual(['a', 'b', 'c', 'd']);
    expect(maxRunning).toBe(1);
    // Back to back, 10 ms each: no overlap, no gap.
    expect(h.calls.map((c) => [c.start - 1_000, c.end - 1_000])).toEqual([[0, 10], [10, 20], [20, 30], [30, 40]]);
    expect(h.queue.size).toBe(0);
    expect(h.idle).toBe(1);
  });

  it('takes entries pushed while it runs, after the ones before them', async () => {
    const h = harness(async (_e, _n, clock): Promise<StepResult> => {
      await clock.sleep(20, never());
      return 'done';
    });
    h.queue.push(entry('a'));
    await h.clock.advance(5);
    h.queue.push(entry('b'));
    h.queue.push(entry('c'));
    await h.clock.advance(60);
    expect(h.settled).toEqual(['a', 'b', 'c']);
  });

  it('starts again after going idle', async () => {
    const h = harness(() => 'done');
    h.queue.push(entry('a'));
    await h.clock.advance(0);
    expect(h.idle).toBe(1);
    h.queue.push(entry('b'));
    await h.clock.advance(0);
    expect(h.idle).toBe(2);
    expect(h.settled).toEqual(['a', 'b']);
  });

  it('retries a deferred entry exactly recheckMs later while the ones behind it go ahead', async () => {
    const h = harness((e, attempt) => (e.name === 'a' && attempt < 3 ? 'deferred' : 'done'), { recheckMs: 100 });
    const a = entry('a');
    h.queue.push(a);
    h.queue.push(entry('b'));
    h.queue.push(entry('c'));
    await h.clock.advance(0);
    expect(h.settled).toEqual(['b', 'c']); // b and c did not wait for a
    await h.clock.advance(99);
    expect(h.calls.map((c) => c.name)).toEqual(['a', 'b', 'c']); // not a moment early
    await h.clock.advance(1);
    expect(h.calls.map((c) => [c.name, c.start - 1_000])).toEqual([['a', 0], ['b', 0], ['c', 0], ['a', 100]]);
    await h.clock.advance(100);
    expect(h.calls.map((c) => c.start - 1_000)).toEqual([0, 0, 0, 100, 200]);
    expect(h.settled).toEqual(['b', 'c', 'a']);
  });

  it('honours a later retryAt set by the step (a backoff) over recheckMs', async () => {
    const h = harness((e, attempt, clock) => {
      if (attempt === 1) {
        e.retryAt = clock.now() + 5_000;
        return 'deferred';
      }
      return 'done';
    }, { recheckMs: 100 });
    h.queue.push(entry('a'));
    await h.clock.advance(4_999);
    expect(h.calls).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.settled).toEqual(['a']);
  });

  it('survives a step that throws (a bug in the runner): the entry is looked at again after recheckMs', async () => {
    const h = harness((_e, attempt) => {
      if (attempt === 1) throw new Error('bug');
      return 'done';
    });
    h.queue.push(entry('a'));
    await h.clock.advance(49);
    expect(h.settled).toEqual([]);
    await h.clock.advance(1);
    expect(h.settled).toEqual(['a']);
  });

  it('does not start an entry before its notBefore', async () => {
    const h = harness(() => 'done');
    h.queue.push(entry('late', 1_150));
    h.queue.push(entry('now'));
    await h.clock.advance(149);
    expect(h.settled).toEqual(['now']);
    await h.clock.advance(1);
    expect(h.settled).toEqual(['now', 'late']);
    expect(h.calls.find((c) => c.name === 'late')!.start).toBe(1_150);
  });

  it('runs queues of different scopes independently: a slow step does not hold up another scope', async () => {
    const clock = new FakeClock();
    const slow = harness(async (_e, _n, c): Promise<StepResult> => {
      await c.sleep(600, never());
      return 'done';
    }, { clock });
    const fast = harness(async (_e, _n, c): Promise<StepResult> => {
      await c.sleep(5, never());
      return 'done';
    }, { clock });
    slow.queue.push(entry('slow'));
    fast.queue.push(entry('fast-1'));
    fast.queue.push(entry('fast-2'));
    await clock.advance(10);
    expect(fast.settled).toEqual(['fast-1', 'fast-2']);
    expect(slow.settled).toEqual([]);
    await clock.advance(590);
    expect(slow.settled).toEqual(['slow']);
  });

  it('stops scheduling once closed, after the step in progress finishes', async () => {
    let release!: () => void;
    const h = harness(async (e) => {
      if (e.name === 'a') await new Promise<void>((resolve) => (release = resolve));
      return e.name === 'deferred' ? 'deferred' : 'done';
    }, { recheckMs: 20 });
    h.queue.push(entry('deferred'));
    h.queue.push(entry('a'));
    h.queue.push(entry('b'));
    await h.clock.advance(0);
    expect(h.calls.map((c) => c.name)).toEqual(['deferred', 'a']);

    let closed = false;
    const closing = h.queue.close().then(() => (closed = true));
    await h.clock.advance(20);
    expect(closed).toBe(false); // waits for the running step
    release();
    await closing;

    await h.clock.advance(200); // many recheck periods
    expect(h.calls.map((c) => c.name)).toEqual(['deferred', 'a']);
    expect(h.settled).toEqual(['a']);
    expect(h.queue.size).toBe(2);
    expect(h.idle).toBe(0);

    // Entries pushed after close are held, not run.
    h.queue.push(entry('c'));
    await h.clock.advance(100);
    expect(h.calls).toHaveLength(2);
  });

  it('wakes a sleeping queue when a new entry arrives, instead of waiting out the recheck', async () => {
    const h = harness((e) => (e.name === 'blocked' ? 'deferred' : 'done'), { recheckMs: 1_000 });
    h.queue.push(entry('blocked'));
    await h.clock.advance(20); // asleep until the recheck at 1 000
    h.queue.push(entry('b'));
    await h.clock.advance(0);
    expect(h.settled).toEqual(['b']);
    expect(h.calls.find((c) => c.name === 'b')!.start).toBe(1_020);
  });

  it('runs an entry pushed while a deferred one is being evaluated without waiting out the recheck', async () => {
    const h = harness(async (e, _n, clock): Promise<StepResult> => {
      if (e.name !== 'blocked') return 'done';
      await clock.sleep(50, never());
      return 'deferred';
    }, { recheckMs: 1_000 });
    h.queue.push(entry('blocked'));
    await h.clock.advance(10);
    h.queue.push(entry('b')); // arrives while 'blocked' is still being evaluated
    await h.clock.advance(40);
    expect(h.settled).toEqual(['b']);
    expect(h.calls.find((c) => c.name === 'b')!.start).toBe(1_050);
  });
});
