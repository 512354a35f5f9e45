import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Request signing for executor calls (docs/EXECUTOR.md#signed-calls). Every call the worker makes
 * to an executor carries
 *
 *   x-arbiter-timestamp: <unix seconds>
 *   x-arbiter-signature: v1=<hex HMAC-SHA256(key, "<timestamp>\n<METHOD>\n<path?query>\n<body>")>
 *
 * so the executor can tell a call from Arbiter (the key's holder) from anyone else who can reach
 * it, and a call replayed long after it was made. The same code signs in the worker, the tools and
 * the tests, and verifies in the simulated fleet.
 */

export const TIMESTAMP_HEADER = 'x-arbiter-timestamp';
export const SIGNATURE_HEADER = 'x-arbiter-signature';
/** How far a call's timestamp may be from the verifier's clock, either way. */
export const DEFAULT_SIGNATURE_TOLERANCE_MS = 5 * 60_000;

/** What is signed: one line each for the timestamp, the method and the path, then the body as sent. */
export function signingPayload(timestamp: string, method: string, pathWithQuery: string, body: string | Buffer): Buffer {
  const head = Buffer.from(`${timestamp}\n${method.toUpperCase()}\n${pathWithQuery}\n`, 'utf8');
  return Buffer.concat([head, typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

function hmacHex(key: string, payload: Buffer): string {
  return createHmac('sha256', key).update(payload).digest('hex');
}

export interface SignInput {
  key: string;
  method: string;
  /** The path and query exactly as sent, e.g. `/resources?arn=arn%3A…`. */
  pathWithQuery: string;
  body?: string | Buffer;
  /** Epoch ms; defaults to now. */
  now?: number;
}

/** The two headers that sign one call. */
export function signRequest(input: SignInput): Record<string, string> {
  const timestamp = String(Math.floor((input.now ?? Date.now()) / 1_000));
  const signature = hmacHex(input.key, signingPayload(timestamp, input.method, input.pathWithQuery, input.body ?? ''));
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: `v1=${signature}` };
}

/** The path and query of a URL as fetch sends them. */
export function pathWithQueryOf(url: string | URL): string {
  const parsed = typeof url === 'string' ? new URL(url) : url;
  return `${parsed.pathname}${parsed.search}`;
}

/**
 * `fetch` with the call signed: for tools and tests that call an executor (the simulated fleet)
 * directly, with the same signature the worker's HttpExecutor sends. The body must be a string
 * (or absent), since the signature covers its exact bytes.
 */
export function signedFetch(key: string, url: string | URL, init: Omit<RequestInit, 'body'> & { body?: string } = {}): Promise<Response> {
  const method = (init.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers);
  for (const [name, value] of Object.entries(signRequest({ key, method, pathWithQuery: pathWithQueryOf(url), body: init.body ?? '' }))) {
    headers.set(name, value);
  }
  return fetch(url, { ...init, method, headers });
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

export interface VerifyInput {
  key: string;
  method: string;
  pathWithQuery: string;
  body: string | Buffer;
  timestamp: string | string[] | undefined;
  signature: string | string[] | undefined;
  now?: number;
  toleranceMs?: number;
}

/**
 * Checks a call's signature (constant-time) and freshness. The reason says which check failed,
 * never what the right signature would have been.
 */
export function verifySignature(input: VerifyInput): SignatureCheck {
  const timestamp = single(input.timestamp);
  const signature = single(input.signature);
  if (timestamp === undefined || signature === undefined) return { ok: false, reason: `missing ${timestamp === undefined ? TIMESTAMP_HEADER : SIGNATURE_HEADER} header` };
  if (!/^\d{1,15}$/.test(timestamp)) return { ok: false, reason: `${TIMESTAMP_HEADER} must be unix seconds` };
  const tolerance = input.toleranceMs ?? DEFAULT_SIGNATURE_TOLERANCE_MS;
  const skew = Number(timestamp) * 1_000 - (input.now ?? Date.now());
  if (Math.abs(skew) > tolerance) {
    return { ok: false, reason: `timestamp ${timestamp} is ${Math.round(Math.abs(skew) / 1_000)} s ${skew < 0 ? 'old' : 'in the future'}, outside ±${Math.round(tolerance / 1_000)} s` };
  }
  const match = /^v1=([0-9a-f]{64})$/i.exec(signature.trim());
  if (!match) return { ok: false, reason: `${SIGNATURE_HEADER} must be v1=<64 hex digits>` };
  const expected = Buffer.from(hmacHex(input.key, signingPayload(timestamp, input.method, input.pathWithQuery, input.body)), 'hex');
  const given = Buffer.from(match[1]!.toLowerCase(), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature does not match' };
  return { ok: true };
}

/** A short, non-reversible name of a key for logs ("which key is this worker using?"), never the key. */
export function keyFingerprint(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

function single(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? undefined : v;
}
