import { Agent, request as undiciRequest, type Dispatcher } from 'undici';
import { ArbiterError, errorMessage } from '../contract/errors.ts';
import { DEFAULT_MAX_CONNECTIONS } from './defaults.ts';
import { pathWithQueryOf, signRequest } from './signing.ts';
import type { ExecuteInput, ExecuteResult, Executor, Observation } from './types.ts';

export interface HttpExecutorOptions {
  /** The endpoint implementing the webhook contract (docs/EXECUTOR.md), e.g. `http://127.0.0.1:8088`. */
  baseUrl: string;
  /** Per call; a held `/actions` response lasts as long as the action, so this bounds the slowest action. */
  timeoutMs?: number;
  /** Sent with every call, e.g. an API key header your endpoint or its gateway wants. */
  headers?: Record<string, string>;
  /** Sent as `authorization: Bearer <token>` with every call (wins over an `authorization` in `headers`). */
  bearerToken?: string;
  /**
   * Signs every call (HMAC-SHA256 over timestamp, method, path and body: `x-arbiter-timestamp`,
   * `x-arbiter-signature: v1=<hex>`, docs/EXECUTOR.md#signed-calls) so the endpoint can refuse
   * calls that did not come from Arbiter.
   */
  hmacKey?: string;
  /**
   * Tries after the first, for answers that say the call did not take effect: 429 (honouring
   * Retry-After), a refused connection, and — for `observe`, which is safe to repeat — 502/503/504
   * and resets. Exponential backoff with full jitter, always inside the caller's deadline.
   */
  retries?: number;
  retryBaseMs?: number;
  /**
   * Connections to the endpoint at most, for actions and again for observations (two pools, so a
   * quick observe never waits behind actions held open for their whole run); calls beyond it wait
   * for one, inside their deadline. Default 64 (DEFAULT_MAX_CONNECTIONS). `null`: unbounded, one
   * connection per call in flight (undici's global dispatcher), ~930 per worker at a storm's start.
   */
  maxConnections?: number | null;
}

/**
 * Calls a user's endpoint to act on infrastructure. A status the endpoint chose (4xx, 500) is a
 * definite answer; anything that leaves the outcome unknown (no connection, timeout, a gateway
 * 502/503/504) throws EXECUTOR_UNAVAILABLE, so the worker observes before deciding to retry.
 */
export class HttpExecutor implements Executor {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  // Secrets (the bearer token among the headers, the key): in #private fields, which neither
  // util.inspect nor JSON.stringify show, so logging the executor cannot leak them.
  readonly #headers: Record<string, string>;
  readonly #hmacKey: string | undefined;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  /** Its own pools when the connections are bounded; otherwise undici's global one. */
  private readonly pools: { actions: Dispatcher; observations: Dispatcher } | undefined;

  constructor(options: HttpExecutorOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 60_000;
    // Lower-cased, so a configured `Authorization` and the bearer token do not end up as two values.
    const given = Object.fromEntries(Object.entries(options.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
    this.#headers = { ...given, ...(options.bearerToken ? { authorization: `Bearer ${options.bearerToken}` } : {}) };
    this.#hmacKey = options.hmacKey !== undefined && options.hmacKey !== '' ? options.hmacKey : undefined;
    this.retries = options.retries ?? 3;
    this.retryBaseMs = options.retryBaseMs ?? 200;
    const bound = options.maxConnections === undefined ? DEFAULT_MAX_CONNECTIONS : options.maxConnections;
    this.pools = bound === null ? undefined : { actions: new Agent({ connections: bound }), observations: new Agent({ connections: bound }) };
  }

  async execute(input: ExecuteInput): Promise<ExecuteResult> {
    const { status, body } = await this.request(`${this.baseUrl}/actions`, input.signal, 'only-if-not-received', {
      method: 'POST',
      headers: {
        ...this.#headers,
        'content-type': 'application/json',
        'idempotency-key': input.requestId,
        'x-fencing-token': String(input.fencingToken),
      },
      body: JSON.stringify({
        requestId: input.requestId,
        agentId: input.agentId,
        arn: input.arn,
        action: input.action,
        params: input.params,
        fencingToken: input.fencingToken,
      }),
    });
    const where = `${input.action} on ${input.arn}`;

    if (status >= 200 && status < 300) {
      if (!isRecord(body) || typeof body.version !== 'number') {
        // The action probably ran but we cannot say at which version: the worker verifies.
        throw new ArbiterError('EXECUTOR_FAILED', `${where}: HTTP ${status} without a JSON body carrying a numeric version`);
      }
      return { ok: true, version: body.version, detail: text(body.detail) ?? 'executed' };
    }
    const code = (isRecord(body) && text(body.code)) || `HTTP_${status}`;
    const detail = (isRecord(body) && text(body.detail)) || (typeof body === 'string' && body.slice(0, 500)) || `HTTP ${status}`;
    if (status === 409 && code === 'FENCED') {
      const highest = isRecord(body) && typeof body.highestToken === 'number' ? `, highest seen ${body.highestToken}` : '';
      throw new ArbiterError('FENCED', `${where}: fencing token ${input.fencingToken} refused${highest}: ${detail}`);
    }
    if (status === 502 || status === 503 || status === 504) {
      throw new ArbiterError('EXECUTOR_UNAVAILABLE', `${where}: HTTP ${status} from a gateway, outcome unknown: ${detail}`);
    }
    if (status === 429) throw new ArbiterError('EXECUTOR_UNAVAILABLE', `${where}: still rate-limited (HTTP 429) after ${this.retries + 1} tries: ${detail}`);
    const version = isRecord(body) && typeof body.version === 'number' ? body.version : 0;
    return { ok: false, version, detail, code };
  }

  async verify(input: ExecuteInput, _result: ExecuteResult): Promise<{ ok: boolean; version: number; detail: string }> {
    const observed = await this.observe(input.arn, input.signal);
    if (!observed.exists) return { ok: false, version: observed.version, detail: `${input.arn} does not exist` };
    if (observed.appliedRequestIds.includes(input.requestId)) {
      return { ok: true, version: observed.version, detail: `applied; resource at version ${observed.version}` };
    }
    const running = observed.inProgressRequestIds.includes(input.requestId);
    return {
      ok: false,
      version: observed.version,
      detail: running ? 'still in progress on the resource' : `not among the requests applied to ${input.arn}`,
    };
  }

  async observe(arn: string, signal?: AbortSignal): Promise<Observation> {
    const { status, body } = await this.request(`${this.baseUrl}/resources?arn=${encodeURIComponent(arn)}`, signal, 'safe', {
      method: 'GET',
      headers: { ...this.#headers, accept: 'application/json' },
    });
    if (status !== 200) {
      const detail = (isRecord(body) && text(body.detail)) || `HTTP ${status}`;
      const retryable = status >= 500;
      throw new ArbiterError(retryable ? 'EXECUTOR_UNAVAILABLE' : 'EXECUTOR_FAILED', `observe ${arn}: ${detail}`);
    }
    if (!isObservation(body)) throw new ArbiterError('EXECUTOR_FAILED', `observe ${arn}: response is not an Observation`);
    return body;
  }

  /**
   * Status and parsed body, retried while the answer says the call did not take effect (see
   * `retries`). `repeat`: a GET is `safe` to repeat whatever happened; a POST is repeated
   * `only-if-not-received` (429, or a connection that was refused outright).
   */
  private async request(
    url: string,
    signal: AbortSignal | undefined,
    repeat: 'safe' | 'only-if-not-received',
    init: Call,
  ): Promise<{ status: number; body: unknown }> {
    // One timer and one controller for the whole call, retries included: AbortSignal.timeout and
    // AbortSignal.any cost more than the HTTP exchange itself at a storm's rate of executions.
    const deadline = Date.now() + this.timeoutMs;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`no answer within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (let attempt = 0; ; attempt++) {
        let answer: { status: number; body: unknown; retryAfterMs?: number } | undefined;
        let failure: unknown;
        try {
          answer = await this.once(url, controller.signal, init);
        } catch (error) {
          failure = error;
        }
        const again =
          attempt < this.retries &&
          !controller.signal.aborted &&
          (answer
            ? answer.status === 429 || (repeat === 'safe' && [502, 503, 504].includes(answer.status))
            : repeat === 'safe' || isRefused(failure));
        if (!again) {
          if (answer) return answer;
          throw this.unavailable(url, signal, timedOut, failure);
        }
        // Full jitter: spreads the retries of many workers hitting one overloaded endpoint.
        const backoff = answer?.retryAfterMs ?? Math.random() * this.retryBaseMs * 2 ** attempt;
        await sleepUntil(Math.min(Date.now() + backoff, deadline), controller.signal);
      }
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * One call, signed afresh (a retry gets a new timestamp); the body arrives after the status, so a
   * reset or timeout can still hit while reading it.
   */
  private async once(url: string, signal: AbortSignal, init: Call): Promise<{ status: number; body: unknown; retryAfterMs?: number }> {
    const headers = this.#hmacKey
      ? { ...init.headers, ...signRequest({ key: this.#hmacKey, method: init.method, pathWithQuery: pathWithQueryOf(url), body: init.body ?? '' }) }
      : init.headers;
    const pool = this.pools && (init.method === 'GET' ? this.pools.observations : this.pools.actions);
    const { status, raw, retryAfter } = await exchange(url, init.method, headers, init.body, signal, pool);
    const retryAfterSeconds = Number(retryAfter);
    const retryAfterMs = Number.isFinite(retryAfterSeconds) && retryAfterSeconds > 0 ? Math.min(retryAfterSeconds * 1_000, 30_000) : undefined;
    if (raw.trim() === '') return { status, body: undefined, retryAfterMs };
    try {
      return { status, body: JSON.parse(raw), retryAfterMs };
    } catch {
      return { status, body: raw, retryAfterMs };
    }
  }

  private unavailable(url: string, signal: AbortSignal | undefined, timedOut: boolean, error: unknown): ArbiterError {
    const why = signal?.aborted ? 'aborted by the caller' : timedOut ? `no answer within ${this.timeoutMs} ms` : `unreachable: ${errorMessage(causeOf(error))}`;
    return new ArbiterError('EXECUTOR_UNAVAILABLE', `${url}: ${why}; outcome unknown`, { cause: error });
  }
}

/** A call as `request` and `once` make it. */
interface Call {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

/**
 * One HTTP exchange through undici (its global dispatcher keeps connections alive): ~80 µs of CPU
 * per call against ~135 for Node's http client and twice that for fetch, and a storm's executions
 * make three calls each (docs/BENCHMARKS.md, issue 12 sixth pass). The body is read to the end, so
 * a reset or the signal can still fail the call after the status arrived.
 */
async function exchange(
  url: string,
  method: 'GET' | 'POST',
  headers: Record<string, string>,
  body: string | undefined,
  signal: AbortSignal,
  dispatcher: Dispatcher | undefined,
): Promise<{ status: number; raw: string; retryAfter: string | undefined }> {
  const response = await undiciRequest(url, { method, headers, body, signal, ...(dispatcher ? { dispatcher } : {}) });
  const raw = await response.body.text();
  const retryAfter = response.headers['retry-after'];
  return { status: response.statusCode, raw, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter };
}

/** The connection was refused: nothing reached the endpoint, so the call can be repeated safely. */
function isRefused(error: unknown): boolean {
  return (causeOf(error) as { code?: unknown } | undefined)?.code === 'ECONNREFUSED';
}

function sleepUntil(at: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, at - Date.now()));
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

// A socket error may come wrapped (a cause); its code is what tells a refused connection.
function causeOf(error: unknown): unknown {
  return error instanceof Error && error.cause !== undefined ? error.cause : error;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function isObservation(value: unknown): value is Observation {
  return (
    isRecord(value) &&
    typeof value.arn === 'string' &&
    typeof value.exists === 'boolean' &&
    typeof value.kind === 'string' &&
    typeof value.version === 'number' &&
    isRecord(value.state) &&
    Array.isArray(value.appliedRequestIds) &&
    Array.isArray(value.inProgressRequestIds)
  );
}
