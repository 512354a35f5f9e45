import { describe, expect, it } from 'vitest';
import { firstSeen, integerBelow, oneOf } from '../../src/metrics/labels.ts';
import { consumerLag } from '../../src/metrics/lag.ts';
import { LockLogLedger, type LockLogCount, type LockLogLabels } from '../../src/metrics/lock-log.ts';

const identity = (_event: string, labels: LockLogLabels) => labels;
const failed = (agent: string, settled: number, tail: number, resourceType: string | null = 'pod'): LockLogCount => ({
  event: 'acquire_failed',
  resourceType,
  agent,
  settled,
  tail,
});
const byKey = (ledger: LockLogLedger) => Object.fromEntries(ledger.totals().map((t) => [`${t.event}/${t.labels.resource_type}/${t.labels.agent}`, t.total]));

describe('LockLogLedger: settled rows counted once, the tail recounted each refresh', () => {
  it('exports settled + tail, and only the growth is added to the counters', () => {
    const ledger = new LockLogLedger(identity);
    // Takeover: the whole log; 5 rows below the horizon, 2 above.
    expect(ledger.apply([failed('a', 5, 2)])).toEqual([{ event: 'acquire_failed', labels: { resource_type: 'pod', agent: 'a' }, total: 7 }]);
    // Next refresh reads from the old horizon: the 2 tail rows are settled now, 1 new row in the tail.
    expect(ledger.apply([failed('a', 2, 1)])).toEqual([{ event: 'acquire_failed', labels: { resource_type: 'pod', agent: 'a' }, total: 1 }]);
    expect(byKey(ledger)).toEqual({ 'acquire_failed/pod/a': 8 });
    // Nothing new: no growth, the total stays (settled rows are not read again).
    expect(ledger.apply([failed('a', 0, 1)])).toEqual([]);
    expect(byKey(ledger)).toEqual({ 'acquire_failed/pod/a': 8 });
  });

  it('counts a row that became visible late inside the tail (an older `at` than rows already counted)', () => {
    const ledger = new LockLogLedger(identity);
    ledger.apply([failed('a', 0, 3)]);
    // A transaction that started earlier commits now: its row lands in the tail, which is recounted.
    expect(ledger.apply([failed('a', 0, 4)])).toEqual([{ event: 'acquire_failed', labels: { resource_type: 'pod', agent: 'a' }, total: 1 }]);
    expect(byKey(ledger)).toEqual({ 'acquire_failed/pod/a': 4 });
  });

  it('never goes down: a tail row gone (its partition dropped) keeps the total where it was', () => {
    const ledger = new LockLogLedger(identity);
    ledger.apply([failed('a', 0, 3), { event: 'expired', resourceType: 'node', agent: 'b', settled: 0, tail: 1 }]);
    expect(ledger.apply([failed('a', 0, 2)])).toEqual([]);
    expect(byKey(ledger)).toEqual({ 'acquire_failed/pod/a': 3, 'expired/node/b': 1 });
    expect(ledger.apply([failed('a', 0, 4)])).toEqual([{ event: 'acquire_failed', labels: { resource_type: 'pod', agent: 'a' }, total: 1 }]);
  });

  it('folds labels through the bound: agents past the cap add up under other; a non-ARN key is other', () => {
    const agent = firstSeen(2);
    const ledger = new LockLogLedger((_e, l) => ({ resource_type: l.resource_type, agent: agent(l.agent) }));
    ledger.apply([failed('a', 1, 0), failed('b', 1, 0), failed('c', 2, 0), failed('d', 0, 3), failed('e', 1, 0, null)]);
    expect(byKey(ledger)).toEqual({ 'acquire_failed/pod/a': 1, 'acquire_failed/pod/b': 1, 'acquire_failed/pod/other': 5, 'acquire_failed/other/other': 1 });
    // The next refresh reads d's 3 rows again (now settled) and 3 new ones from c.
    expect(ledger.apply([failed('c', 3, 0), failed('d', 3, 0)])).toEqual([{ event: 'acquire_failed', labels: { resource_type: 'pod', agent: 'other' }, total: 3 }]);
  });

  it('keeps the events apart', () => {
    const ledger = new LockLogLedger(identity);
    ledger.apply([failed('a', 1, 0), { event: 'expired', resourceType: 'pod', agent: 'a', settled: 1, tail: 1 }]);
    expect(byKey(ledger)).toEqual({ 'acquire_failed/pod/a': 1, 'expired/pod/a': 2 });
  });
});

describe('label bounds', () => {
  it('firstSeen keeps the first values, is stable, and never spends a slot on other or junk', () => {
    const bound = firstSeen(2);
    expect(bound('other')).toBe('other');
    expect(bound('')).toBe('other');
    expect(bound('x'.repeat(129))).toBe('other');
    expect([bound('a'), bound('b'), bound('c'), bound('a'), bound('c')]).toEqual(['a', 'b', 'other', 'a', 'other']);
  });

  it('oneOf and integerBelow', () => {
    expect(oneOf(['restart'])('restart')).toBe('restart');
    expect(oneOf(['restart'])('reboot')).toBe('other');
    const partition = integerBelow(12);
    expect(['0', '11', '12', '-1', '01', '1.5', 'x', 'other'].map(partition)).toEqual(['0', '11', 'other', 'other', 'other', 'other', 'other', 'other']);
  });
});

describe('consumerLag', () => {
  it('is the high watermark minus the further of the committed and processed positions', () => {
    expect(consumerLag({ high: 100, low: 0, committed: 40 })).toBe(60);
    expect(consumerLag({ high: 100, low: 0, committed: 40, processed: 90 })).toBe(10);
    expect(consumerLag({ high: 100, low: 0, committed: 95, processed: 90 })).toBe(5);
  });

  it('counts from the earliest offset when nothing was committed or processed, and is never negative', () => {
    expect(consumerLag({ high: 100, low: 30, committed: -1 })).toBe(70);
    expect(consumerLag({ high: 100, low: 30, committed: 10 })).toBe(70);
    expect(consumerLag({ high: 0, low: 0, committed: -1 })).toBe(0);
    expect(consumerLag({ high: 100, low: 0, committed: 120 })).toBe(0);
  });
});
