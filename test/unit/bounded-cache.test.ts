import { describe, expect, it } from 'vitest';
import { BoundedCache } from '../../src/contract/bounded-cache.ts';

describe('BoundedCache', () => {
  it('remembers up to its bound, then forgets everything at once and starts again', () => {
    const cache = new BoundedCache<string, number>(3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.set('a', 1)).toBe(1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([1, 2, 3]);
    cache.set('d', 4);
    expect([cache.get('a'), cache.get('b'), cache.get('c'), cache.get('d')]).toEqual([undefined, undefined, undefined, 4]);
    // A falsy value is remembered like any other.
    cache.set('zero', 0);
    expect(cache.get('zero') ?? cache.set('zero', 99)).toBe(0);
  });
});
