import { describe, expect, it } from 'vitest';
import { derivedId, newId } from '../../src/contract/ids.ts';
import { buildRequest } from '../../src/contract/request.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-([0-9a-f])[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('ids', () => {
  it('new ids are time-ordered UUIDs (version 7): each sorts after the one made before it', () => {
    const ids = Array.from({ length: 5_000 }, () => newId());
    for (const id of ids) expect(UUID.exec(id)?.[1]).toBe('7');
    expect(new Set(ids).size).toBe(ids.length);
    // Sorted as text (and as PostgreSQL's uuid) in the order they were made: right-edge B-tree inserts.
    expect([...ids].sort()).toEqual(ids);
  });

  it('a new id carries the time it was made, to the millisecond', () => {
    const before = Date.now();
    const id = newId();
    const after = Date.now();
    const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  });

  it('a request built without an id gets a new time-ordered one; a given id is kept', () => {
    const built = buildRequest({ agentId: 'a', resourceArn: 'arn:x', action: 'restart' });
    expect(UUID.exec(built.requestId)?.[1]).toBe('7');
    const given = '3b241101-e2bb-4255-8caf-4136c566a962';
    expect(buildRequest({ requestId: given, agentId: 'a', resourceArn: 'arn:x', action: 'restart' }).requestId).toBe(given);
  });

  it('derived ids stay name-based (version 5) and stable', () => {
    expect(derivedId('plan-1')).toBe(derivedId('plan-1'));
    expect(UUID.exec(derivedId('plan-1'))?.[1]).toBe('5');
  });
});
