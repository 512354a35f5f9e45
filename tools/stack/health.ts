import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../../src/index.ts';

export const HEALTH_TIMEOUT_MS = 90_000;

export function probeTcp(host: string, port: number, timeoutMs = 1_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const fail = (reason: string): void => {
      socket.destroy();
      reject(new Error(`TCP ${host}:${port}: ${reason}`));
    };
    socket.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs} ms`));
    socket.once('error', (error) => fail(errorMessage(error)));
    socket.once('connect', () => {
      socket.end();
      resolve();
    });
  });
}

/** Resolves with the parsed JSON body of a 2xx answer. */
export async function probeHttpJson(url: string, timeoutMs = 2_000): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new Error(`GET ${url}: ${describeFetchError(error)}`);
  }
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  try {
    return await response.json();
  } catch {
    throw new Error(`GET ${url}: the answer is not JSON`);
  }
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Returns a reason to stop waiting early, e.g. the process we wait for has died. */
  giveUpIf?: () => string | undefined;
}

/** Retries `check` until it resolves; on timeout the error carries the last failure. */
export async function waitUntil(check: () => Promise<void>, options: WaitOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? HEALTH_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let lastFailure = 'not checked yet';
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      lastFailure = errorMessage(error);
    }
    const reason = options.giveUpIf?.();
    if (reason !== undefined) throw new Error(`${reason} (last check: ${lastFailure})`);
    if (Date.now() >= deadline) {
      throw new Error(`not healthy after ${Math.round(timeoutMs / 1000)} s (last check: ${lastFailure})`);
    }
    await sleep(options.intervalMs ?? 500);
  }
}

function describeFetchError(error: unknown): string {
  // undici hides the useful part (ECONNREFUSED, …) in `cause`.
  const cause = error instanceof Error && error.cause !== undefined ? `: ${errorMessage(error.cause)}` : '';
  return `${errorMessage(error)}${cause}`;
}
