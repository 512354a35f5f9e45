import { describe, expect, it } from 'vitest';
import { cpuBetween, cpuSnapshot, type PidGroup, type ProcessCpu } from '../../tools/bench/proc.ts';

const WORKERS: PidGroup[] = [{ name: 'arbiter workers', pids: [100] }];
const byComm = (p: ProcessCpu, claimed: ReadonlyMap<number, string>) => claimed.get(p.pid) ?? (p.comm === 'postgres' ? 'postgres' : 'other processes');
const proc = (pid: number, comm: string, seconds: number, reapedChildrenSeconds = 0, startTicks = 1): ProcessCpu => ({ pid, startTicks, comm, seconds, reapedChildrenSeconds });
const between = (before: ProcessCpu[], after: ProcessCpu[]) => cpuBetween(cpuSnapshot(WORKERS, before, byComm), cpuSnapshot(WORKERS, after, byComm)).coreSeconds;

describe('CPU between two snapshots', () => {
  it('counts a PostgreSQL backend that exits in between for what it used after the first snapshot', () => {
    // The backend had used 5 s by the first snapshot and 7 s when it exited; the postmaster reaped it.
    const used = between([proc(1, 'postgres', 1), proc(2, 'postgres', 5)], [proc(1, 'postgres', 1.25, 7)]);
    expect(used.postgres).toBeCloseTo(0.25 + 2, 6);
  });

  it('counts a PostgreSQL process that lived only between the snapshots (an autovacuum worker), through the postmaster', () => {
    const used = between([proc(1, 'postgres', 1)], [proc(1, 'postgres', 1, 3)]);
    expect(used.postgres).toBeCloseTo(3, 6);
  });

  it('never takes a process\u2019s past off its group when it exits (a worker stopped in between)', () => {
    const used = between([proc(100, 'node', 10), proc(7, 'java', 4)], [proc(7, 'java', 6)]);
    expect(used['arbiter workers']).toBe(0);
    expect(used['other processes']).toBeCloseTo(2, 6);
  });

  it('tells a reused pid from the process it replaced', () => {
    const used = between([proc(5, 'python3', 9, 0, 100)], [proc(5, 'python3', 1, 0, 200)]);
    expect(used['other processes']).toBeCloseTo(1, 6);
  });

  it('reports every named group, idle ones as 0', () => {
    const used = between([], []);
    expect(Object.keys(used).sort()).toEqual(['arbiter workers', 'kafka broker', 'other processes', 'postgres', 'schema registry']);
    expect(Object.values(used).every((v) => v === 0)).toBe(true);
  });
});
