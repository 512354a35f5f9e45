import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArbiterError } from '../../src/contract/errors.ts';
import { DEFAULT_MAX_CONNECTIONS, HttpExecutor } from '../../src/executor/index.ts';
import type { ExecuteInput } from '../../src/executor/index.ts';
import { deploymentArn, nodeArn, parseFleetSpec, podArn, startSimServer, type SimServer } from '../../tools/fleet/index.ts';

const API = deploymentArn('payments', 'api');
const WORKER = deploymentArn('payments', 'worker');
const POD = podArn(API, 'api', 0);

let server: SimServer;
let executor: HttpExecutor;

beforeAll(async () => {
  server = await startSimServer({
    port: 0,
    latencyScale: 0.01,
    // scale always fails; hotfix is slow enough (500 ms) to outlast a short client timeout, even on a busy machine.
    spec: parseFleetSpec({ failureRate: { scale: 1 }, latencyMs: { hotfix: 50_000 } }),
  });
  executor = new HttpExecutor({ baseUrl: server.url, timeoutMs: 5_000 });
});

afterAll(async () => {
  await server.close();
});

/** A test endpoint on a free local port: its URL, and a close that resolves once it is closed. */
async function listening(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let seq = 0;
function input(arn: string, action: string, extra: Partial<ExecuteInput> = {}): ExecuteInput {
  seq += 1;
  return { requestId: `http-${seq}`, agentId: 'agent-a', arn, action, params: {}, fencingToken: 1, ...extra };
}

async function rejection(promise: Promise<unknown>): Promise<ArbiterError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ArbiterError);
  return error as ArbiterError;
}

describe('HttpExecutor against the simulated fleet', () => {
  it('executes a restart and verifies it took effect', async () => {
    const restart = input(POD, 'restart');
    const result = await executor.execute(restart);
    expect(result).toEqual({ ok: true, version: 2, detail: expect.stringContaining('restarted') });
    expect(await executor.verify(restart, result)).toEqual({ ok: true, version: 2, detail: expect.any(String) });

    const never = input(POD, 'restart');
    expect(await executor.verify(never, result)).toMatchObject({ ok: false, version: 2 });
  });

  it('observes a pod with its workload capacity', async () => {
    const observation = await executor.observe(podArn(API, 'api', 1));
    expect(observation).toMatchObject({
      arn: podArn(API, 'api', 1),
      exists: true,
      kind: 'pod',
      version: 1,
      workload: { arn: API, desired: 4, available: 4, minAvailable: 3 },
      appliedRequestIds: [],
      inProgressRequestIds: [],
    });
  });

  it('observes an unknown ARN as not existing', async () => {
    const observation = await executor.observe('arn:sim:k8s:local:000000000000:cluster/prod/ns/payments/deployment/nope');
    expect(observation).toMatchObject({ exists: false, kind: 'unknown', version: 0 });
  });

  it('throws FENCED for a token lower than one the resource has seen', async () => {
    const node = nodeArn('node-3');
    expect(await executor.execute(input(node, 'drain', { fencingToken: 10 }))).toMatchObject({ ok: true });
    const error = await rejection(executor.execute(input(node, 'drain', { fencingToken: 9 })));
    expect(error).toMatchObject({ code: 'FENCED', retryable: true });
    const { fenced } = (await (await fetch(`${server.url}/fenced`)).json()) as { fenced: Array<{ fencingToken: number }> };
    expect(fenced).toEqual([expect.objectContaining({ arn: node, fencingToken: 9, highestToken: 10 })]);
  });

  it('returns ok:false with the code for an injected failure, a refused action and an unknown resource', async () => {
    const scale = input(WORKER, 'scale', { params: { replicas: '5' } });
    const failed = await executor.execute(scale);
    expect(failed).toMatchObject({ ok: false, code: 'INJECTED_FAILURE', version: 1 });
    expect(await executor.verify(scale, failed)).toMatchObject({ ok: false, version: 1 });

    expect(await executor.execute(input(WORKER, 'rollback'))).toMatchObject({ ok: false, code: 'NO_PREVIOUS_REVISION' });
    expect(await executor.execute(input(WORKER, 'restart'))).toMatchObject({ ok: false, code: 'INVALID_ACTION' });
    expect(await executor.execute(input(`${WORKER}-gone`, 'rollback'))).toMatchObject({ ok: false, code: 'NOT_FOUND' });
  });

  it('the fleet takes the fencing token from the x-fencing-token header when the body has none', async () => {
    const response = await fetch(`${server.url}/actions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fencing-token': '0' },
      body: JSON.stringify({ requestId: 'raw-1', agentId: 'raw', arn: nodeArn('node-3'), action: 'drain' }),
    });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ code: 'FENCED', highestToken: 10 });
  });

  it('a timeout throws EXECUTOR_UNAVAILABLE (retryable) while the action still completes on the fleet', async () => {
    const impatient = new HttpExecutor({ baseUrl: server.url, timeoutMs: 20 });
    const hotfix = input(WORKER, 'hotfix', { params: { patch: 'p1' } });
    const error = await rejection(impatient.execute(hotfix));
    expect(error).toMatchObject({ code: 'EXECUTOR_UNAVAILABLE', retryable: true });
    expect(error.message).toContain('no answer within 20 ms');

    // Outcome unknown at the time of the error: the worker observes, and the change did land.
    expect(await executor.verify(hotfix, { ok: false, version: 0, detail: '' })).toMatchObject({ ok: false, detail: expect.stringContaining('in progress') });
    const until = Date.now() + 5_000;
    let verified = await executor.verify(hotfix, { ok: false, version: 0, detail: '' });
    while (!verified.ok && Date.now() < until) {
      await sleep(20);
      verified = await executor.verify(hotfix, { ok: false, version: 0, detail: '' });
    }
    expect(verified).toMatchObject({ ok: true, version: 2 });
  });

  it('a caller abort throws EXECUTOR_UNAVAILABLE', async () => {
    const error = await rejection(executor.execute(input(POD, 'restart', { signal: AbortSignal.abort() })));
    expect(error).toMatchObject({ code: 'EXECUTOR_UNAVAILABLE', retryable: true });
    expect(error.message).toContain('aborted by the caller');
  });
});

describe('HttpExecutor without a server', () => {
  it('throws EXECUTOR_UNAVAILABLE once the server is stopped', async () => {
    const stopped = await startSimServer({ port: 0, latencyScale: 0.01 });
    const client = new HttpExecutor({ baseUrl: stopped.url, timeoutMs: 2_000 });
    expect(await client.execute(input(POD, 'restart'))).toMatchObject({ ok: true });
    await stopped.close();

    const error = await rejection(client.execute(input(POD, 'restart')));
    expect(error).toMatchObject({ code: 'EXECUTOR_UNAVAILABLE', retryable: true });
    expect(error.cause).toBeDefined();
    expect((await rejection(client.observe(POD))).code).toBe('EXECUTOR_UNAVAILABLE');
  });
});

describe('HttpExecutor retries what did not take effect', () => {
  /** An endpoint that answers the scripted statuses in turn, then the fleet's success. */
  async function scripted(statuses: number[], extraHeaders: Record<string, string> = {}) {
    const { createServer } = await import('node:http');
    const seen: Array<{ method: string; at: number }> = [];
    const server = createServer((req, res) => {
      seen.push({ method: req.method ?? '', at: Date.now() });
      const status = statuses.shift();
      if (status !== undefined) {
        res.writeHead(status, { 'content-type': 'application/json', ...extraHeaders }).end(JSON.stringify({ ok: false, code: `HTTP_${status}`, detail: 'busy' }));
        return;
      }
      const body = req.method === 'GET'
        ? { arn: POD, exists: true, kind: 'pod', version: 3, state: {}, appliedRequestIds: [], inProgressRequestIds: [] }
        : { ok: true, version: 3, detail: 'done' };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    const { url, close } = await listening(server);
    return { url, seen, close };
  }

  it('a 429 is retried (honouring Retry-After) and the action then runs once', async () => {
    const endpoint = await scripted([429, 429], { 'retry-after': '0.05' });
    try {
      const client = new HttpExecutor({ baseUrl: endpoint.url, retries: 3, retryBaseMs: 10 });
      expect(await client.execute(input(POD, 'restart'))).toMatchObject({ ok: true, version: 3 });
      expect(endpoint.seen.map((s) => s.method)).toEqual(['POST', 'POST', 'POST']);
      expect(endpoint.seen[1]!.at - endpoint.seen[0]!.at).toBeGreaterThanOrEqual(45);
    } finally {
      await endpoint.close();
    }
  });

  it('a 429 that never ends is EXECUTOR_UNAVAILABLE (the worker defers), not a final FAILED', async () => {
    const endpoint = await scripted([429, 429, 429]);
    try {
      const client = new HttpExecutor({ baseUrl: endpoint.url, retries: 2, retryBaseMs: 5 });
      const error = await rejection(client.execute(input(POD, 'restart')));
      expect(error).toMatchObject({ code: 'EXECUTOR_UNAVAILABLE', retryable: true });
      expect(endpoint.seen).toHaveLength(3);
    } finally {
      await endpoint.close();
    }
  });

  it('a gateway 503 is retried for observe (safe to repeat) but not for execute (outcome unknown)', async () => {
    const forObserve = await scripted([503, 503]);
    try {
      const client = new HttpExecutor({ baseUrl: forObserve.url, retries: 3, retryBaseMs: 5 });
      expect(await client.observe(POD)).toMatchObject({ version: 3 });
      expect(forObserve.seen).toHaveLength(3);
    } finally {
      await forObserve.close();
    }
    const forExecute = await scripted([503]);
    try {
      const client = new HttpExecutor({ baseUrl: forExecute.url, retries: 3, retryBaseMs: 5 });
      expect((await rejection(client.execute(input(POD, 'restart')))).code).toBe('EXECUTOR_UNAVAILABLE');
      expect(forExecute.seen).toHaveLength(1);
    } finally {
      await forExecute.close();
    }
  });
});

describe('HttpExecutor with its connections bounded (executor.maxConnections)', () => {
  /** An endpoint that answers every observe after 20 ms and counts the connections open at once. */
  async function counting() {
    const { createServer } = await import('node:http');
    let open = 0;
    let mostOpen = 0;
    const server = createServer((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ arn: POD, exists: true, kind: 'pod', version: 3, state: {}, appliedRequestIds: [], inProgressRequestIds: [] }));
      }, 20);
    });
    server.on('connection', (socket) => {
      mostOpen = Math.max(mostOpen, ++open);
      socket.on('close', () => open--);
    });
    const { url, close } = await listening(server);
    return { url, mostOpen: () => mostOpen, close };
  }

  it('answers every call through at most that many connections; null (unbounded) opens one per call in flight', async () => {
    const bounded = await counting();
    const unbounded = await counting();
    try {
      const limited = new HttpExecutor({ baseUrl: bounded.url, maxConnections: 3 });
      const observed = await Promise.all(Array.from({ length: 24 }, () => limited.observe(POD)));
      expect(observed.every((o) => o.version === 3)).toBe(true);
      expect(bounded.mostOpen()).toBeLessThanOrEqual(3);

      const open = new HttpExecutor({ baseUrl: unbounded.url, maxConnections: null });
      await Promise.all(Array.from({ length: 24 }, () => open.observe(POD)));
      expect(unbounded.mostOpen()).toBeGreaterThan(3);
    } finally {
      await Promise.all([bounded.close(), unbounded.close()]);
    }
  });

  it(`is bounded by default, at ${DEFAULT_MAX_CONNECTIONS} connections`, async () => {
    const endpoint = await counting();
    try {
      const client = new HttpExecutor({ baseUrl: endpoint.url });
      await Promise.all(Array.from({ length: DEFAULT_MAX_CONNECTIONS * 2 }, () => client.observe(POD)));
      expect(endpoint.mostOpen()).toBe(DEFAULT_MAX_CONNECTIONS);
    } finally {
      await endpoint.close();
    }
  });

  it('an observe does not wait behind actions holding every action connection', async () => {
    const { createServer } = await import('node:http');
    const held: Array<() => void> = [];
    const server = createServer((req, res) => {
      if (req.method === 'POST') {
        // The action runs until the test lets it end, as a held /actions response does.
        req.resume();
        held.push(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version: 4 })));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ arn: POD, exists: true, kind: 'pod', version: 3, state: {}, appliedRequestIds: [], inProgressRequestIds: [] }));
    });
    const endpoint = await listening(server);
    try {
      const client = new HttpExecutor({ baseUrl: endpoint.url, maxConnections: 1, timeoutMs: 5_000, retries: 0 });
      const action = client.execute(input(POD, 'restart'));
      while (held.length === 0) await sleep(5);
      // With one pool, this observe would wait for the held action's connection until its deadline.
      expect((await client.observe(POD)).version).toBe(3);
      held.shift()!();
      expect(await action).toMatchObject({ ok: true, version: 4 });
    } finally {
      for (const release of held) release();
      await endpoint.close();
    }
  });

  it('a call still waiting for a connection at its deadline is EXECUTOR_UNAVAILABLE, the others answered', async () => {
    const endpoint = await counting();
    try {
      const client = new HttpExecutor({ baseUrl: endpoint.url, maxConnections: 1, timeoutMs: 150, retries: 0 });
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => client.observe(POD)));
      const failed = results.filter((r) => r.status === 'rejected');
      expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(0);
      expect(failed.length).toBeGreaterThan(0);
      for (const f of failed) expect((f as PromiseRejectedResult).reason).toMatchObject({ code: 'EXECUTOR_UNAVAILABLE' });
      // The call in flight at the deadline is aborted with its connection, which may still be
      // closing on the server's side when the next call opens another.
      expect(endpoint.mostOpen()).toBeLessThanOrEqual(2);
    } finally {
      await endpoint.close();
    }
  });
});

describe('HttpExecutor signs every call and sends the configured auth', () => {
  const KEY = 'k'.repeat(32);

  /** An endpoint that records what it was sent and answers like the fleet. */
  async function recording() {
    const { createServer } = await import('node:http');
    const seen: Array<{ method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string }> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const body = req.method === 'GET'
          ? { arn: POD, exists: true, kind: 'pod', version: 3, state: {}, appliedRequestIds: ['sig-1'], inProgressRequestIds: [] }
          : { ok: true, version: 3, detail: 'done' };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
    const { url, close } = await listening(server);
    return { url, seen, close };
  }

  it('execute, observe and verify each carry a v1 HMAC over timestamp, method, path with query and body', async () => {
    const { verifySignature } = await import('../../src/executor/index.ts');
    const endpoint = await recording();
    try {
      const client = new HttpExecutor({ baseUrl: endpoint.url, hmacKey: KEY });
      const call = input(POD, 'restart', { requestId: 'sig-1' });
      const result = await client.execute(call);
      await client.observe(POD);
      await client.verify(call, result);
      expect(endpoint.seen.map((s) => s.method)).toEqual(['POST', 'GET', 'GET']);
      for (const s of endpoint.seen) {
        expect(s.headers['x-arbiter-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
        expect(Math.abs(Number(s.headers['x-arbiter-timestamp']) - Date.now() / 1_000)).toBeLessThan(5);
        const check = { key: KEY, method: s.method, pathWithQuery: s.url, body: s.body, timestamp: s.headers['x-arbiter-timestamp'] as string, signature: s.headers['x-arbiter-signature'] as string };
        expect(verifySignature(check)).toEqual({ ok: true });
        // Any change to what was signed, or another key, breaks it.
        expect(verifySignature({ ...check, key: 'x'.repeat(32) })).toMatchObject({ ok: false, reason: 'signature does not match' });
        expect(verifySignature({ ...check, body: `${s.body} ` })).toMatchObject({ ok: false });
        expect(verifySignature({ ...check, pathWithQuery: `${s.url}x` })).toMatchObject({ ok: false });
        expect(verifySignature({ ...check, method: s.method === 'GET' ? 'POST' : 'GET' })).toMatchObject({ ok: false });
      }
      expect(endpoint.seen[1]!.url).toBe(`/resources?arn=${encodeURIComponent(POD)}`);
    } finally {
      await endpoint.close();
    }
  });

  it('a timestamp outside ±5 min fails verification, either way', async () => {
    const { signRequest, verifySignature } = await import('../../src/executor/index.ts');
    const at = Date.now();
    for (const skew of [-6 * 60_000, 6 * 60_000]) {
      const headers = signRequest({ key: KEY, method: 'POST', pathWithQuery: '/actions', body: '{}', now: at + skew });
      const check = verifySignature({ key: KEY, method: 'POST', pathWithQuery: '/actions', body: '{}', timestamp: headers['x-arbiter-timestamp'], signature: headers['x-arbiter-signature'], now: at });
      expect(check).toMatchObject({ ok: false, reason: expect.stringMatching(/outside ±300 s/) });
    }
    const fresh = signRequest({ key: KEY, method: 'POST', pathWithQuery: '/actions', body: '{}', now: at - 4 * 60_000 });
    expect(verifySignature({ key: KEY, method: 'POST', pathWithQuery: '/actions', body: '{}', timestamp: fresh['x-arbiter-timestamp'], signature: fresh['x-arbiter-signature'], now: at })).toEqual({ ok: true });
    expect(verifySignature({ key: KEY, method: 'POST', pathWithQuery: '/actions', body: '{}', timestamp: undefined, signature: undefined })).toMatchObject({ ok: false, reason: expect.stringMatching(/missing/) });
  });

  it('sends the bearer token and extra headers, and keeps secrets out of inspection and JSON', async () => {
    const { inspect } = await import('node:util');
    const endpoint = await recording();
    try {
      const client = new HttpExecutor({ baseUrl: endpoint.url, hmacKey: KEY, bearerToken: 'tok-secret-123', headers: { 'X-Api-Key': 'api-secret-456', Authorization: 'Basic overridden' } });
      await client.observe(POD);
      expect(endpoint.seen[0]!.headers).toMatchObject({ authorization: 'Bearer tok-secret-123', 'x-api-key': 'api-secret-456' });
      for (const shown of [inspect(client, { depth: 5, showHidden: true }), JSON.stringify(client)]) {
        expect(shown).not.toContain('tok-secret-123');
        expect(shown).not.toContain('api-secret-456');
        expect(shown).not.toContain(KEY);
      }
    } finally {
      await endpoint.close();
    }
  });

  it('options from config: env wins over the file, keys and tokens may come from files', async () => {
    const { httpExecutorOptions } = await import('../../src/executor/index.ts');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'executor-opts-'));
    try {
      writeFileSync(join(dir, 'key'), `${KEY}\n`);
      writeFileSync(join(dir, 'token'), 'from-file\n');
      const base = { url: 'http://x:1', timeoutMs: 1_000 };
      expect(httpExecutorOptions({ ...base, hmacKeyFile: join(dir, 'key'), bearerTokenFile: join(dir, 'token') }, {})).toMatchObject({ hmacKey: KEY, bearerToken: 'from-file' });
      expect(httpExecutorOptions({ ...base, hmacKey: KEY }, { ARBITER_EXECUTOR_HMAC_KEY: 'from-env-key-0123456', ARBITER_EXECUTOR_TOKEN: 'env-token' })).toMatchObject({ hmacKey: 'from-env-key-0123456', bearerToken: 'env-token' });
      expect(httpExecutorOptions(base, {})).toEqual({ baseUrl: 'http://x:1', timeoutMs: 1_000 });
      expect(() => httpExecutorOptions({ ...base, hmacKeyFile: join(dir, 'missing') }, {})).toThrow(/executor.hmacKeyFile: cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
