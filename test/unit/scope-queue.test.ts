import { afterEach, describe, expect, it } from 'vitest';
import { buildRequest } from '../../src/contract/request.ts';
import { newPending, type PendingRequest } from '../../src/worker/pending.ts';
import { ScopeQueue, type StepResult } from '../../src/worker/scope-queue.ts';

const SCOPE = 'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/payments/deployment/api';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function entry(name: string, { scope = SCOPE, waitMs = 0 }: { scope?: string; waitMs?: number } = {}): PendingRequest {
  const request = buildRequest({ agentId: 'agent-a', resourceArn: `${scope}/pod/${name}`, action: 'restart', reason: name });
  return newPending(request, scope, 0, `key-${name}`, Date.now(), waitMs);
}

const nameOf = (e: PendingRequest) => e.request.reason ?? '?';

/** Resolves once `check` holds, polling; fails after `timeoutMs`. */
async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(5);
  }
}

interface Harness {
  queue: ScopeQueue;
  /** Every step call, in order, with its start and end times. */
  calls: { name: string; start: number; end: number }[];
  settled: string[];
  idle: number;
}

const queues: ScopeQueue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

function harness(
  behaviour: (e: PendingRequest, attempt: number) => Promise<StepResult> | StepResult,
  { recheckMs = 50, scope = SCOPE }: { recheckMs?: number; scope?: string } = {},
): Harness {
  const attempts = new Map<PendingRequest, number>();
  const h: Harness = {
    calls: [],
    settled: [],
    idle: 0,
    queue: new ScopeQueue(
      scope,
      async (e) => {
        const attempt = (attempts.get(e) ?? 0) + 1;
        attempts.set(e, attempt);
        const call = { name: nameOf(e), start: Date.now(), end: Number.NaN };
        h.calls.push(call);
        try {
          return await behaviour(e, attempt);
        } finally {
          call.end = Date.now();
        }
      },
      (e) => h.settled.push(nameOf(e)),
      () => h.idle++,
      recheckMs,
    ),
  };
  queues.push(h.queue);
  return h;
}

describe('ScopeQueue', () => {
  it('runs entries one at a time, in arrival order', async () => {
    let running = 0;
    let maxRunning = 0;
    const h = harness(async (): Promise<StepResult> => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(10);
      running--;
      return 'done';
    });
    for (const name of ['a', 'b', 'c', 'd']) h.queue.push(entry(name));
    expect(h.queue.size).toBe(4);

    await until(() => h.settled.length === 4);
    expect(h.calls.map((c) => c.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(h.settled).toEqual(['a', 'b', 'c', 'd']);
    expect(maxRunning).toBe(1);
    for (let i = 1; i < h.calls.length; i++) expect(h.calls[i]!.start).toBeGreaterThanOrEqual(h.calls[i - 1]!.end);
    expect(h.queue.size).toBe(0);
    await until(() => h.idle === 1);
  });

  it('takes entries pushed while it runs, after the ones before them', async () => {
    const h = harness(async (): Promise<StepResult> => {
      await sleep(20);
      return 'done';
    });
    h.queue.push(entry('a'));
    await sleep(5);
    h.queue.push(entry('b'));
    h.queue.push(entry('c'));
    await until(() => h.settled.length === 3);
    expect(h.settled).toEqual(['a', 'b', 'c']);
  });

  it('starts again after going idle', async () => {
    const h = harness(() => 'done');
    h.queue.push(entry('a'));
    await until(() => h.idle === 1);
    h.queue.push(entry('b'));
    await until(() => h.idle === 2);
    expect(h.settled).toEqual(['a', 'b']);
  });

  it('retries a deferred entry after recheckMs while the ones behind it go ahead', async () => {
    const recheckMs = 100;
    const h = harness((e, attempt) => (nameOf(e) === 'a' && attempt < 3 ? 'deferred' : 'done'), { recheckMs });
    const a = entry('a');
    h.queue.push(a);
    h.queue.push(entry('b'));
    h.queue.push(entry('c'));

    await until(() => h.settled.length === 3);
    expect(h.calls.map((c) => c.name)).toEqual(['a', 'b', 'c', 'a', 'a']);
    expect(h.settled).toEqual(['b', 'c', 'a']);
    // b and c did not wait for a's recheck.
    const [first, b, c, second, third] = h.calls;
    expect(c!.end - first!.start).toBeLessThan(recheckMs);
    expect(b!.start).toBeLessThan(first!.start + recheckMs);
    // a was looked at again only once recheckMs had passed each time (timers may fire 1 ms early).
    expect(second!.start - first!.end).toBeGreaterThanOrEqual(recheckMs - 2);
    expect(third!.start - second!.end).toBeGreaterThanOrEqual(recheckMs - 2);
    expect(a.retryAt).toBeGreaterThan(0);
  });

  it('treats a step that throws as deferred, and does not lose the entry', async () => {
    const h = harness((_e, attempt) => {
      if (attempt === 1) throw new Error('database went away');
      return 'done';
    });
    h.queue.push(entry('a'));
    await until(() => h.settled.length === 1);
    expect(h.calls.map((c) => c.name)).toEqual(['a', 'a']);
  });

  it('does not start an entry before its notBefore', async () => {
    const h = harness(() => 'done');
    const late = entry('late', { waitMs: 150 });
    h.queue.push(late);
    h.queue.push(entry('now'));
    await until(() => h.settled.length === 2);
    expect(h.settled).toEqual(['now', 'late']);
    const lateCall = h.calls.find((c) => c.name === 'late')!;
    expect(lateCall.start).toBeGreaterThanOrEqual(late.notBefore - 2);
    const nowCall = h.calls.find((c) => c.name === 'now')!;
    expect(nowCall.start).toBeLessThan(late.notBefore);
  });

  it('runs queues of different scopes concurrently: a slow step does not hold up another scope', async () => {
    const slowMs = 600;
    const slow = harness(async (): Promise<StepResult> => {
      await sleep(slowMs);
      return 'done';
    }, { scope: `${SCOPE}-slow` });
    const fast = harness(async (): Promise<StepResult> => {
      await sleep(5);
      return 'done';
    }, { scope: `${SCOPE}-fast` });

    const started = Date.now();
    slow.queue.push(entry('slow', { scope: slow.queue.scope }));
    fast.queue.push(entry('fast-1', { scope: fast.queue.scope }));
    fast.queue.push(entry('fast-2', { scope: fast.queue.scope }));

    await until(() => fast.settled.length === 2);
    const fastDone = Date.now() - started;
    expect(fastDone).toBeLessThan(slowMs / 2);
    expect(slow.settled).toEqual([]);

    await until(() => slow.settled.length === 1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(slowMs - 2);
  });

  it('stops scheduling once closed, after the step in progress finishes', async () => {
    let release!: () => void;
    const h = harness(async (e) => {
      if (nameOf(e) === 'a') await new Promise<void>((resolve) => (release = resolve));
      return nameOf(e) === 'deferred' ? 'deferred' : 'done';
    }, { recheckMs: 20 });
    h.queue.push(entry('deferred'));
    h.queue.push(entry('a'));
    h.queue.push(entry('b'));
    await until(() => h.calls.some((c) => c.name === 'a'));

    let closed = false;
    const closing = h.queue.close().then(() => (closed = true));
    await sleep(20);
    expect(closed).toBe(false); // waits for the running step
    release();
    await closing;

    const callsAtClose = h.calls.length;
    expect(h.calls.map((c) => c.name)).toEqual(['deferred', 'a']);
    await sleep(100); // several recheck periods
    expect(h.calls.length).toBe(callsAtClose);
    expect(h.settled).toEqual(['a']);
    expect(h.queue.size).toBe(2);
    expect(h.idle).toBe(0);

    // Entries pushed after close are held, not run.
    h.queue.push(entry('c'));
    await sleep(50);
    expect(h.calls.length).toBe(callsAtClose);
  });

  it('wakes a sleeping queue when a new entry arrives, instead of waiting out the recheck', async () => {
    const recheckMs = 1_000;
    const h = harness((e) => (nameOf(e) === 'blocked' ? 'deferred' : 'done'), { recheckMs });
    h.queue.push(entry('blocked'));
    await until(() => h.calls.length === 1);
    await sleep(20); // the queue is now asleep until the recheck
    const pushedAt = Date.now();
    h.queue.push(entry('b'));
    await until(() => h.settled.includes('b'), recheckMs * 3);
    expect(Date.now() - pushedAt).toBeLessThan(recheckMs / 2);
  });

  it('runs an entry pushed while a deferred one is being evaluated without waiting out the recheck', async () => {
    const recheckMs = 1_000;
    const h = harness(async (e) => {
      if (nameOf(e) !== 'blocked') return 'done';
      await sleep(50);
      return 'deferred';
    }, { recheckMs });
    h.queue.push(entry('blocked'));
    await until(() => h.calls.length === 1);
    const pushedAt = Date.now();
    h.queue.push(entry('b')); // arrives while 'blocked' is still being evaluated
    await until(() => h.settled.includes('b'), recheckMs * 3);
    expect(Date.now() - pushedAt).toBeLessThan(recheckMs / 2);
  });
});
