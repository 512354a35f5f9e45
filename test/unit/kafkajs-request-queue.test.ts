import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { scheduleCheckPendingRequests } from '../../src/contract/kafkajs-request-queue.ts';

const require = createRequire(import.meta.url);

interface Queue {
  pending: unknown[];
  inflight: Map<number, unknown>;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
  maybeThrottle(ms: number): void;
  push(request: { entry: Entry; expectResponse: boolean; sendRequest: () => void }): void;
  fulfillRequest(response: { correlationId: number; payload: Buffer; size: number }): void;
  destroy(): void;
}
interface Entry {
  correlationId: number;
  apiName: string;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}
type QueueClass = new (options: Record<string, unknown>) => Queue;

/** kafkajs' own class, as shipped (this file does not load the CLI, so nothing is patched here). */
const KafkajsQueue = require('kafkajs/src/network/requestQueue/index.js') as QueueClass;
/** kafkajs' class with the replacement, as installKafkajsPatches puts it on kafkajs' own. */
class PatchedQueue extends KafkajsQueue {}
(PatchedQueue.prototype as unknown as Record<string, unknown>).scheduleCheckPendingRequests = scheduleCheckPendingRequests;

const logger = { debug() {}, info() {}, warn() {}, error() {} };
const queues: Queue[] = [];
function queue(Class: QueueClass, maxInFlightRequests: number | null = null): { q: Queue; checks: () => number; sent: number[] } {
  const q = new Class({ maxInFlightRequests, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'test', broker: 'b:9092', logger });
  queues.push(q);
  const check = vi.spyOn(q, 'checkPendingRequests');
  const sent: number[] = [];
  return { q, checks: () => check.mock.calls.length, sent };
}
let nextId = 1;
function request(sent: number[]): { entry: Entry; expectResponse: boolean; sendRequest: () => void } {
  const correlationId = nextId++;
  return { entry: { correlationId, apiName: 'Fetch', resolve: () => {}, reject: () => {} }, expectResponse: true, sendRequest: () => sent.push(correlationId) };
}
const respond = (q: Queue, correlationId: number) => q.fulfillRequest({ correlationId, payload: Buffer.alloc(0), size: 0 });

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  for (const q of queues.splice(0)) q.destroy();
  vi.useRealTimers();
});

describe("a connection's request queue", () => {
  it("kafkajs' own re-checks an empty queue every millisecond after a response (the reason for the replacement)", () => {
    const { q, checks, sent } = queue(KafkajsQueue);
    q.push(request(sent));
    respond(q, sent[0]!);
    vi.advanceTimersByTime(100);
    // If a kafkajs release stops doing this, the replacement can go.
    expect(checks()).toBeGreaterThanOrEqual(50);
  });

  it('with the replacement, a response with nothing waiting leaves no timer behind', () => {
    const { q, checks, sent } = queue(PatchedQueue);
    q.push(request(sent));
    respond(q, sent[0]!);
    expect(checks()).toBe(1); // the response's own check
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(checks()).toBe(1);
  });

  it('sends a request held back by the in-flight limit when a response frees a slot', () => {
    const { q, sent } = queue(PatchedQueue, 1);
    q.push(request(sent));
    q.push(request(sent));
    expect(sent).toHaveLength(1);
    expect(q.pending).toHaveLength(1);
    respond(q, sent[0]!);
    expect(sent).toHaveLength(2);
    expect(q.pending).toHaveLength(0);
    respond(q, sent[1]!);
    vi.advanceTimersByTime(20); // the re-check scheduled while the request waited runs once
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps re-checking every 10 ms while requests wait, as kafkajs does', () => {
    const { q, checks, sent } = queue(PatchedQueue, 1);
    q.push(request(sent));
    q.push(request(sent));
    const before = checks();
    vi.advanceTimersByTime(100);
    expect(checks() - before).toBe(10);
    expect(sent).toHaveLength(1); // still in flight: the slot is not free
  });

  it('sends what client-side throttling held back when the throttling ends, not before', () => {
    const { q, sent } = queue(PatchedQueue);
    q.maybeThrottle(50);
    q.push(request(sent));
    expect(sent).toHaveLength(0);
    vi.advanceTimersByTime(45);
    expect(sent).toHaveLength(0);
    vi.advanceTimersByTime(10);
    expect(sent).toHaveLength(1);
    respond(q, sent[0]!);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('checks once more when throttling ends even with nothing waiting, then stops', () => {
    const { q, checks } = queue(PatchedQueue);
    q.maybeThrottle(30);
    q.scheduleCheckPendingRequests();
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(40);
    expect(checks()).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
