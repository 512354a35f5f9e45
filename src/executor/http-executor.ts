import { ArbiterError, errorMessage } from '../contract/errors.ts';
import type { ExecuteInput, ExecuteResult, Executor, Observation } from './types.ts';

export interface HttpExecutorOptions {
  /** The endpoint implementing the webhook contract (docs/EXECUTOR.md), e.g. `http://127.0.0.1:8088`. */
  baseUrl: string;
  /** Per call; a held `/actions` response lasts as long as the action, so this bounds the slowest action. */
  timeoutMs?: number;
  /** Sent with every call, e.g. `authorization` for the user's endpoint. */
  headers?: Record<string, string>;
}

/**
 * Calls a user's endpoint to act on infrastructure. A status the endpoint chose (4xx, 500) is a
 * definite answer; anything that leaves the outcome unknown (no connection, timeout, a gateway
 * 502/503/504) throws EXECUTOR_UNAVAILABLE, so the worker observes before deciding to retry.
 */
export class HttpExecutor implements Executor {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  constructor(options: HttpExecutorOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.headers = options.headers ?? {};
  }

  async execute(input: ExecuteInput): Promise<ExecuteResult> {
    const { status, body } = await this.request(`${this.baseUrl}/actions`, input.signal, {
      method: 'POST',
      headers: {
        ...this.headers,
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
    const { status, body } = await this.request(`${this.baseUrl}/resources?arn=${encodeURIComponent(arn)}`, signal, {
      method: 'GET',
      headers: { ...this.headers, accept: 'application/json' },
    });
    if (status !== 200) {
      const detail = (isRecord(body) && text(body.detail)) || `HTTP ${status}`;
      const retryable = status >= 500;
      throw new ArbiterError(retryable ? 'EXECUTOR_UNAVAILABLE' : 'EXECUTOR_FAILED', `observe ${arn}: ${detail}`);
    }
    if (!isObservation(body)) throw new ArbiterError('EXECUTOR_FAILED', `observe ${arn}: response is not an Observation`);
    return body;
  }

  /** Status and parsed body; the body arrives after the status, so a reset or timeout can still hit while reading it. */
  private async request(url: string, signal: AbortSignal | undefined, init: RequestInit): Promise<{ status: number; body: unknown }> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let status: number;
    let raw: string;
    try {
      const response = await fetch(url, { ...init, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      status = response.status;
      raw = await response.text();
    } catch (error) {
      throw this.unavailable(url, signal, timeout, error);
    }
    if (raw.trim() === '') return { status, body: undefined };
    try {
      return { status, body: JSON.parse(raw) };
    } catch {
      return { status, body: raw };
    }
  }

  private unavailable(url: string, signal: AbortSignal | undefined, timeout: AbortSignal, error: unknown): ArbiterError {
    const why = signal?.aborted
      ? 'aborted by the caller'
      : timeout.aborted
        ? `no answer within ${this.timeoutMs} ms`
        : `unreachable: ${errorMessage(causeOf(error))}`;
    return new ArbiterError('EXECUTOR_UNAVAILABLE', `${url}: ${why}; outcome unknown`, { cause: error });
  }
}

// fetch wraps the socket error ("ECONNREFUSED") in a generic "fetch failed".
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
