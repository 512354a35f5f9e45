/** Exponential backoff from 100 ms, capped at 5 s: how long to wait before try number `attempt + 1`. */
export function backoffMs(attempt: number): number {
  return Math.min(5_000, 100 * 2 ** Math.max(0, attempt - 1));
}

/**
 * Runs `work` until it succeeds, waiting `backoffMs(attempt)` between tries. After each failure
 * `tryAgain` (which may log) says whether to wait and try again; when it says no, the error is thrown.
 */
export async function retryWithBackoff<T>(work: () => Promise<T>, tryAgain: (error: unknown, attempt: number, waitMs: number) => boolean): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const waitMs = backoffMs(attempt);
      if (!tryAgain(error, attempt, waitMs)) throw error;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}
