import type { Kafka } from 'kafkajs';
import { ArbiterError } from '../contract/errors.ts';
import { isTerminalPlanEvent, type PlanEvent } from '../contract/plan.ts';
import type { Serde } from '../contract/serde.ts';
import { TopicTail } from './topic-tail.ts';

export interface PlanResult {
  planId: string;
  status: PlanEvent['planStatus'];
  /** Every event seen for the plan, in order (a republished duplicate appears once). */
  events: PlanEvent[];
}

interface Waiter {
  resolve: (result: PlanResult) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  onEvent?: (event: PlanEvent) => void;
}

/** Plans remembered once ended, so waiting for one that already ended returns at once. */
const REMEMBERED = 10_000;

/** Follows the plan-events topic and hands each plan's events, in order, to whoever waits for it. */
export class PlanWatcher {
  private readonly tail: TopicTail;
  private readonly events = new Map<string, PlanEvent[]>();
  private readonly waiters = new Map<string, Waiter[]>();

  constructor(kafka: Kafka, serde: Serde, topic: string) {
    this.tail = new TopicTail(kafka, topic, async (message) => {
      try {
        this.deliver(await serde.decodePlanEvent(message.value));
      } catch {
        // A record we cannot decode is not an agent's to judge.
      }
    });
  }

  start(): Promise<void> {
    return this.tail.start();
  }

  private deliver(event: PlanEvent): void {
    const seen = this.events.get(event.planId) ?? [];
    // A relay that died before marking its outbox publishes those events again: seq tells.
    if (seen.some((e) => e.seq === event.seq)) return;
    seen.push(event);
    seen.sort((a, b) => a.seq - b.seq);
    this.events.set(event.planId, seen);
    if (this.events.size > REMEMBERED) this.events.delete(this.events.keys().next().value!);
    const waiters = this.waiters.get(event.planId) ?? [];
    for (const w of waiters) w.onEvent?.(event);
    if (!isTerminalPlanEvent(event)) return;
    this.waiters.delete(event.planId);
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve(this.result(event.planId)!);
    }
  }

  private result(planId: string): PlanResult | null {
    const events = this.events.get(planId) ?? [];
    const last = events.find(isTerminalPlanEvent);
    return last ? { planId, status: last.planStatus, events: [...events] } : null;
  }

  /** Resolves when the plan ends (SUCCEEDED, FAILED, CANCELLED or REJECTED); TIMEOUT after `timeoutMs`. */
  async wait(planId: string, timeoutMs: number, onEvent?: (event: PlanEvent) => void): Promise<PlanResult> {
    await this.start();
    for (const e of this.events.get(planId) ?? []) onEvent?.(e);
    const known = this.result(planId);
    if (known) return known;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = (this.waiters.get(planId) ?? []).filter((w) => w.timer !== timer);
        if (list.length) this.waiters.set(planId, list);
        else this.waiters.delete(planId);
        reject(new ArbiterError('TIMEOUT', `plan ${planId} did not end within ${timeoutMs} ms`));
      }, timeoutMs);
      const list = this.waiters.get(planId) ?? [];
      list.push({ resolve, reject, timer, ...(onEvent ? { onEvent } : {}) });
      this.waiters.set(planId, list);
    });
  }

  async close(): Promise<void> {
    for (const list of this.waiters.values()) for (const w of list) clearTimeout(w.timer);
    this.waiters.clear();
    await this.tail.close();
  }
}
