/** Exponential backoff from 100 ms, capped at 5 s: how long to wait before try number `attempt + 1`. */
export function backoffMs(attempt: number): number {
  return Math.min(5_000, 100 * 2 ** Math.max(0, attempt - 1));
}
