import { describe, expect, it } from 'vitest';
import type { RecentChange } from '../../src/decide/index.ts';
import { ResourceMemory } from '../../src/worker/resource-memory.ts';

const HISTORY_MS = 1_000;
const change = (requestId: string, at: number, resourceVersion: number | null = null): RecentChange => ({ requestId, agentId: 'a', action: 'restart', at, resourceVersion });
/** The list the memory holds for a resource (private: what a reap keeps or replaces). */
const heldList = (memory: ResourceMemory, arn: string) => (memory as unknown as { changes: Map<string, RecentChange[]> }).changes.get(arn);

describe('what a partition owner remembers about its resources', () => {
  it('keeps the last committed version and the changes within the history window', () => {
    const memory = new ResourceMemory(HISTORY_MS);
    memory.recordChange('arn:a', change('r1', 1_000, 3));
    memory.recordChange('arn:a', change('r2', 1_600, null));
    expect(memory.knownVersion('arn:a')).toBe(3);
    expect(memory.recentChanges('arn:a', 1_900).map((c) => c.requestId)).toEqual(['r1', 'r2']);
    expect(memory.recentChanges('arn:a', 2_100).map((c) => c.requestId)).toEqual(['r2']);
    expect(memory.recentChanges('arn:b', 2_100)).toEqual([]);
  });

  it('a reap drops expired changes and forgets a resource with none left', () => {
    const memory = new ResourceMemory(HISTORY_MS);
    memory.recordChange('arn:a', change('r1', 1_000));
    memory.recordChange('arn:a', change('r2', 1_600));
    memory.recordChange('arn:b', change('r3', 1_000));
    memory.prune(2_200);
    expect(heldList(memory, 'arn:a')?.map((c) => c.requestId)).toEqual(['r2']);
    expect(heldList(memory, 'arn:b')).toBeUndefined();
  });

  it('a reap leaves a list with nothing expired as it is, not a copy (a copy is old-generation garbage)', () => {
    const memory = new ResourceMemory(HISTORY_MS);
    memory.recordChange('arn:a', change('r1', 1_000));
    memory.recordChange('arn:a', change('r2', 1_600));
    const before = heldList(memory, 'arn:a');
    memory.prune(1_900);
    expect(heldList(memory, 'arn:a')).toBe(before);
    expect(before?.map((c) => c.requestId)).toEqual(['r1', 'r2']);
  });
});
