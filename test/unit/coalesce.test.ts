import { describe, expect, it } from 'vitest';
import { coalesceKey, Coalescer } from '../../src/coalesce/index.ts';
import type { FinalDecision } from '../../src/contract/decision.ts';

const POD = 'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/payments/deployment/api/pod/api-7d9f';
const OTHER_POD = 'arn:aws:k8s:us-east-1:123456789012:cluster/prod/ns/payments/deployment/api/pod/api-1a2b';

const executed: FinalDecision = { status: 'EXECUTED', rule: 'execute', resourceVersion: 4, fencingToken: 17, detail: 'restarted' };
const failed: FinalDecision = { status: 'FAILED', rule: 'execute', resourceVersion: null, fencingToken: 17, detail: 'executor said no' };

describe('coalesceKey', () => {
  it('does not depend on the order of the params', () => {
    expect(coalesceKey(POD, 'restart', { grace: '30', reason: 'oom' })).toBe(
      coalesceKey(POD, 'restart', { reason: 'oom', grace: '30' }),
    );
  });

  it('tells apart different params, actions and resources', () => {
    const base = coalesceKey(POD, 'restart', { grace: '30' });
    expect(coalesceKey(POD, 'restart', { grace: '31' })).not.toBe(base);
    expect(coalesceKey(POD, 'restart', { grace: '30', force: 'true' })).not.toBe(base);
    expect(coalesceKey(POD, 'restart', {})).not.toBe(base);
    expect(coalesceKey(POD, 'drain', { grace: '30' })).not.toBe(base);
    expect(coalesceKey(OTHER_POD, 'restart', { grace: '30' })).not.toBe(base);
  });

  it('cannot be fooled by values that contain separators', () => {
    expect(coalesceKey(POD, 'restart', { a: 'x,b', b: 'y' })).not.toBe(coalesceKey(POD, 'restart', { a: 'x', b: 'b,y' }));
    expect(coalesceKey(POD, 'restart', {})).not.toContain('\u0000');
  });

  it('gives a request without params the same key, kept or made again, for more resources than it keeps', () => {
    const arns = Array.from({ length: 25_000 }, (_, i) => `${POD}-${i}`);
    const first = arns.map((arn) => coalesceKey(arn, 'restart', {}));
    expect(new Set(first).size).toBe(arns.length);
    expect(arns.map((arn) => coalesceKey(arn, 'restart', {}))).toEqual(first);
    expect(first[0]).toBe(JSON.stringify([arns[0], 'restart', []]));
    expect(coalesceKey(arns[0]!, 'drain', {})).not.toBe(first[0]);
  });
});

describe('Coalescer', () => {
  const key = coalesceKey(POD, 'restart', {});

  it('knows nothing of a key it was never told about', () => {
    expect(new Coalescer().match(key, 0)).toBeUndefined();
  });

  it('matches a primary that is in flight, however long it runs', () => {
    const c = new Coalescer();
    c.startPrimary(key, 'primary-1', 1_000);
    expect(c.match(key, 0)).toEqual({ kind: 'in-flight', primaryRequestId: 'primary-1' });
    expect(c.match(key, 1_000_000)).toEqual({ kind: 'in-flight', primaryRequestId: 'primary-1' });
    expect(c.match(coalesceKey(POD, 'drain', {}), 0)).toBeUndefined();
  });

  it('hands every duplicate of a primary the same match, so its decision is derived once', () => {
    const c = new Coalescer();
    c.startPrimary(key, 'p1', 60_000);
    expect(c.match(key, 0)).toBe(c.match(key, 1));
    c.finish(key, 'p1', executed, 10);
    const finished = c.match(key, 20);
    expect(finished).toEqual({ kind: 'finished', primaryRequestId: 'p1', outcome: executed });
    expect(c.match(key, 30)).toBe(finished);
  });

  it('hands out an EXECUTED outcome within the window, and not after it', () => {
    const c = new Coalescer();
    c.startPrimary(key, 'primary-1', 30_000);
    c.finish(key, 'primary-1', executed, 10_000);
    expect(c.match(key, 10_000)).toEqual({ kind: 'finished', primaryRequestId: 'primary-1', outcome: executed });
    expect(c.match(key, 39_999)).toEqual({ kind: 'finished', primaryRequestId: 'primary-1', outcome: executed });
    expect(c.match(key, 40_000)).toBeUndefined();
    // The expired entry is gone: a later look does not resurrect it.
    expect(c.size).toBe(0);
  });

  it('does not let a FAILED primary absorb later duplicates', () => {
    const c = new Coalescer();
    c.startPrimary(key, 'primary-1', 30_000);
    c.finish(key, 'primary-1', failed, 10_000);
    expect(c.match(key, 10_001)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('lets a retry after a failure become the new primary', () => {
    const c = new Coalescer();
    c.startPrimary(key, 'primary-1', 30_000);
    c.finish(key, 'primary-1', failed, 10_000);
    expect(c.match(key, 10_001)).toBeUndefined();
    c.startPrimary(key, 'primary-2', 30_000);
    expect(c.match(key, 10_002)).toEqual({ kind: 'in-flight', primaryRequestId: 'primary-2' });
  });

  it('ignores finish for a primary that is not the current one', () => {
    const c = new Coalescer();
    c.startPrimary(key, 'primary-1', 30_000);
    c.finish(key, 'someone-else', executed, 10_000);
    expect(c.match(key, 10_001)).toEqual({ kind: 'in-flight', primaryRequestId: 'primary-1' });
    // And for a key nobody started.
    c.finish(coalesceKey(OTHER_POD, 'restart', {}), 'primary-1', executed, 10_000);
    expect(c.size).toBe(1);
  });

  it('prune drops finished entries whose window has passed, and keeps the rest', () => {
    const c = new Coalescer();
    const a = coalesceKey(POD, 'restart', { n: 'a' });
    const b = coalesceKey(POD, 'restart', { n: 'b' });
    const inFlight = coalesceKey(POD, 'restart', { n: 'c' });
    c.startPrimary(a, 'a', 1_000);
    c.finish(a, 'a', executed, 0);
    c.startPrimary(b, 'b', 5_000);
    c.finish(b, 'b', executed, 0);
    c.startPrimary(inFlight, 'c', 1_000);
    expect(c.size).toBe(3);

    expect(c.prune(999)).toBe(0);
    expect(c.prune(1_000)).toBe(1);
    expect(c.size).toBe(2);
    expect(c.match(a, 1_000)).toBeUndefined();
    expect(c.match(b, 1_000)?.kind).toBe('finished');

    expect(c.prune(1_000_000)).toBe(1);
    expect(c.match(inFlight, 1_000_000)).toEqual({ kind: 'in-flight', primaryRequestId: 'c' });
  });
});
