/**
 * kafkajs' RequestQueue (`network/requestQueue/index.js`, one per broker connection) checks its
 * queue of requests waiting to be sent after every response. kafkajs 2.2.4 then schedules the next
 * check whatever the queue holds: with nothing waiting and no throttling, the delay it computes is
 * negative, Node runs the timer after 1 ms, and the check schedules itself again, for as long as the
 * connection lives (kafkajs issue #1556, unfixed in any release). Every connection of every worker
 * woke its event loop ~1,000 times a second: a `Timeout` object and a trip through the kernel each
 * time, idle or not (docs/BENCHMARKS.md, issue 12, tenth pass).
 *
 * The replacement schedules a check only when one can find something to do: requests are waiting
 * (in 10 ms, or when client-side throttling ends, as kafkajs does), or throttling is in effect (at
 * its end). Otherwise the next response or the next queued request checks again, as kafkajs'
 * `fulfillRequest` and `push` already do. installKafkajsPatches (kafkajs-patches.ts) puts it on
 * kafkajs' class; test/unit/kafkajs-request-queue.test.ts runs kafkajs' own queue with it.
 */

/** The parts of kafkajs' RequestQueue the schedule reads and writes. */
export interface RequestQueueState {
  throttledUntil: number;
  pending: unknown[];
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
}

/** kafkajs' own interval for re-checking requests held back by the in-flight limit. */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

export function scheduleCheckPendingRequests(this: RequestQueueState): void {
  if (this.throttleCheckTimeoutId) return;
  const untilUnthrottled = this.throttledUntil - Date.now();
  let delay: number;
  if (this.pending.length > 0) delay = untilUnthrottled > 0 ? untilUnthrottled : CHECK_PENDING_REQUESTS_INTERVAL_MS;
  else if (untilUnthrottled > 0) delay = untilUnthrottled;
  else return; // nothing to send, nothing to wait for
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delay);
}
