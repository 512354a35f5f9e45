import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { verifySignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../src/executor/index.ts';
import { ArbiterError, errorMessage } from '../../src/index.ts';
import type { ActionRequest, FleetErrorCode } from './fleet-actions.ts';
import { type FleetSpec, parseFleetSpec } from './fleet-spec.ts';
import { Fleet } from './fleet.ts';
import { ObservationFeed, type ObservationSink } from './observation-feed.ts';

export interface SimServerOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  spec?: FleetSpec;
  latencyScale?: number;
  random?: () => number;
  /** Publish an observation after every change and a snapshot every snapshotMs (Arbiter's detector reads them). */
  observations?: { sink: ObservationSink; snapshotMs: number; onError?: (error: unknown) => void };
  /**
   * With a key, every POST (actions, out-of-band changes, reset) must carry Arbiter's signature
   * (docs/EXECUTOR.md#signed-calls): missing, wrong or outside ±5 min → 401. Without one, unsigned
   * calls are accepted (the lab default). GETs stay open either way.
   */
  hmacKey?: string;
  /** How far a signature's timestamp may be from the fleet's clock; default 5 min. */
  signatureToleranceMs?: number;
  /**
   * Fencing tokens come from Arbiter only: a token higher than the highest one Arbiter's lock
   * store (arbiter.locks in this database) issued for the resource is refused, 409 FENCED.
   */
  tokenCheck?: { databaseUrl: string };
  /** Lab mode: `POST /reset` (a fresh fleet) is served; otherwise it answers 403. */
  lab?: boolean;
}

export interface SimServer {
  url: string;
  fleet: Fleet;
  close(): Promise<void>;
}

/** The webhook contract (docs/EXECUTOR.md) maps these codes to statuses; 409 means FENCED and nothing else. */
const STATUS_OF: Record<FleetErrorCode, number> = {
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  FENCED: 409,
  RESOURCE_REMOVED: 410,
  INVALID_ACTION: 422,
  INVALID_PARAMS: 422,
  NO_PREVIOUS_REVISION: 422,
  NODE_TERMINATED: 422,
  INJECTED_FAILURE: 500,
};

// A generated benchmark fleet posted to /reset can be a few MB.
const MAX_BODY_BYTES = 16 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startSimServer(options: SimServerOptions = {}): Promise<SimServer> {
  const host = options.host ?? '127.0.0.1';
  const fleet = new Fleet(options.spec ?? parseFleetSpec({}), {
    latencyScale: options.latencyScale ?? 1,
    ...(options.random ? { random: options.random } : {}),
  });

  const feed = options.observations ? new ObservationFeed(fleet, options.observations.sink, options.observations.snapshotMs, options.observations.onError) : null;
  feed?.start();

  const tokens = options.tokenCheck ? new pg.Pool({ connectionString: options.tokenCheck.databaseUrl, max: 2 }) : null;
  // A broken idle connection is replaced by the pool; an unhandled 'error' would end the process.
  tokens?.on('error', () => undefined);
  const guard: Guard = {
    ...(options.hmacKey ? { hmacKey: options.hmacKey } : {}),
    toleranceMs: options.signatureToleranceMs,
    highestIssued: tokens ? (arn) => highestIssuedToken(tokens, arn) : null,
    lab: options.lab ?? false,
  };

  const server = createServer((req, res) => {
    route(fleet, guard, req, res).catch((error: unknown) => {
      if (error instanceof HttpError) send(res, error.status, { ok: false, code: error.code, detail: error.message });
      else send(res, 500, { ok: false, code: 'INTERNAL', detail: errorMessage(error) });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8088, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url,
    fleet,
    close: async () => {
      await new Promise<void>((resolve) => {
        void feed?.stop();
        fleet.close();
        server.close(() => resolve());
        // Held /actions responses and idle keep-alive sockets would otherwise keep close() waiting.
        server.closeAllConnections();
      });
      // After the server: its connections to the lock store are gone before the database may be dropped.
      await tokens?.end().catch(() => undefined);
    },
  };
}

/** What the server checks before a call reaches the fleet. */
interface Guard {
  hmacKey?: string;
  toleranceMs: number | undefined;
  /** The highest fencing token Arbiter's lock store issued for a resource (0 if none); null: no check. */
  highestIssued: ((arn: string) => Promise<number>) | null;
  lab: boolean;
}

async function highestIssuedToken(pool: pg.Pool, arn: string): Promise<number> {
  // A row stays after release, so fencing_token is the last token ever issued for the resource.
  const { rows } = await pool.query<{ token: string }>('SELECT fencing_token::text AS token FROM arbiter.locks WHERE resource_arn = $1', [arn]);
  return rows.length === 0 ? 0 : Number(rows[0]!.token);
}

/** The body of a POST, checked against the signature when the server has a key (401 otherwise). */
async function authenticatedBody(guard: Guard, req: IncomingMessage): Promise<unknown> {
  const raw = await readBody(req);
  if (guard.hmacKey !== undefined) {
    const check = verifySignature({
      key: guard.hmacKey,
      method: req.method ?? 'POST',
      pathWithQuery: req.url ?? '/',
      body: raw,
      timestamp: req.headers[TIMESTAMP_HEADER],
      signature: req.headers[SIGNATURE_HEADER],
      ...(guard.toleranceMs !== undefined ? { toleranceMs: guard.toleranceMs } : {}),
    });
    if (!check.ok) throw new HttpError(401, 'UNAUTHORIZED', `call not signed by Arbiter: ${check.reason}`);
  }
  return parseJson(raw);
}

async function route(fleet: Fleet, guard: Guard, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sim');
  const key = `${req.method ?? 'GET'} ${url.pathname}`;
  switch (key) {
    case 'POST /actions': {
      const action = parseAction(await authenticatedBody(guard, req), req.headers['x-fencing-token']);
      if (guard.highestIssued && action.fencingToken !== undefined) {
        let issued: number;
        try {
          issued = await guard.highestIssued(action.arn);
        } catch (error) {
          // Nothing was done: Arbiter's executor treats 503 as "outcome unknown", observes and retries.
          throw new HttpError(503, 'TOKEN_CHECK_UNAVAILABLE', `cannot check the fencing token against Arbiter's lock store: ${errorMessage(error)}`);
        }
        if (action.fencingToken > issued) {
          const refused = fleet.refuseUnissuedToken({ ...action, fencingToken: action.fencingToken }, issued);
          return send(res, 409, refused);
        }
      }
      // Not tied to the request: if the caller hangs up, the action still completes, like real infrastructure.
      const result = await fleet.execute(action);
      if (result.ok) return send(res, 200, result);
      return send(res, STATUS_OF[result.code], result);
    }
    case 'POST /out-of-band': {
      // A change made behind Arbiter's back — a person with kubectl, an agent going around it: no
      // fencing token, applied like any other action, so the detector can be shown drift. With a
      // key it must be signed too: only the key's holders change the fleet.
      const body = await authenticatedBody(guard, req);
      const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
      const action = parseAction({ requestId: randomUUID(), agentId: 'person:kubectl', params: {}, ...b }, undefined);
      const result = await fleet.execute(action);
      return send(res, result.ok ? 200 : STATUS_OF[result.code], { ...result, requestId: action.requestId });
    }
    case 'GET /resources': {
      const arn = url.searchParams.get('arn');
      if (!arn) throw new HttpError(400, 'BAD_REQUEST', 'query parameter arn is required');
      return send(res, 200, fleet.observe(arn));
    }
    case 'GET /fleet': {
      const kind = url.searchParams.get('kind') ?? undefined;
      const limit = intParam(url, 'limit');
      const offset = intParam(url, 'offset');
      return send(res, 200, fleet.list({ ...(kind ? { kind } : {}), ...(limit !== undefined ? { limit } : {}), ...(offset !== undefined ? { offset } : {}) }));
    }
    case 'GET /violations':
      return send(res, 200, fleet.violations());
    case 'GET /executions': {
      // Several markers select executions on any of them (a scenario's pods and its nodes).
      const executions = fleet.executions(url.searchParams.getAll('marker').filter((m) => m !== ''));
      return send(res, 200, { executions, started: fleet.stats().total });
    }
    case 'GET /fenced': {
      const fenced = fleet.fenced();
      return send(res, 200, { fenced, total: fleet.stats().fenced });
    }
    case 'GET /stats':
      return send(res, 200, fleet.stats());
    case 'POST /reset': {
      if (!guard.lab) throw new HttpError(403, 'LAB_ONLY', 'POST /reset (a fresh fleet) is served only in lab mode (arbiter sim --lab, startSimServer({ lab: true }))');
      const body = await authenticatedBody(guard, req);
      let spec: FleetSpec | undefined;
      try {
        spec = body === undefined ? undefined : parseFleetSpec(body);
      } catch (error) {
        if (error instanceof ArbiterError) throw new HttpError(400, error.code, error.message);
        throw error;
      }
      const latencyScale = numberParam(url, 'latencyScale');
      fleet.reset(spec, latencyScale !== undefined ? { latencyScale } : {});
      return send(res, 200, { ok: true, resources: fleet.size });
    }
    case 'GET /healthz':
      return send(res, 200, { ok: true, resources: fleet.size });
    default:
      throw new HttpError(404, 'NOT_FOUND', `no route ${key}`);
  }
}

function parseAction(body: unknown, fencingHeader: string | string[] | undefined): ActionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'BAD_REQUEST', 'body must be a JSON object');
  const b = body as Record<string, unknown>;
  const problems: string[] = [];
  const text = (field: string): string => {
    const value = b[field];
    if (typeof value !== 'string' || value === '') problems.push(`${field} must be a non-empty string`);
    return typeof value === 'string' ? value : '';
  };
  const request: ActionRequest = {
    requestId: text('requestId'),
    agentId: text('agentId'),
    arn: text('arn'),
    action: text('action'),
    params: {},
  };
  if (b.params !== undefined) {
    if (typeof b.params !== 'object' || b.params === null || Array.isArray(b.params)) problems.push('params must be an object');
    else {
      for (const [name, value] of Object.entries(b.params)) {
        // Lenient on scalars, since hand-written curl calls send numbers; the contract says strings.
        if (['string', 'number', 'boolean'].includes(typeof value)) request.params[name] = String(value);
        else problems.push(`params.${name} must be a string`);
      }
    }
  }
  const rawToken = b.fencingToken ?? (Array.isArray(fencingHeader) ? fencingHeader[0] : fencingHeader);
  if (rawToken !== undefined && rawToken !== null) {
    const token = typeof rawToken === 'string' && rawToken.trim() !== '' ? Number(rawToken) : rawToken;
    if (typeof token !== 'number' || !Number.isSafeInteger(token) || token < 0) problems.push('fencingToken must be a non-negative integer');
    else request.fencingToken = token;
  }
  if (problems.length > 0) throw new HttpError(400, 'BAD_REQUEST', problems.join('; '));
  return request;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'BAD_REQUEST', `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseJson(raw: Buffer): unknown {
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, 'BAD_REQUEST', `body is not JSON: ${errorMessage(error)}`);
  }
}

function intParam(url: URL, name: string): number | undefined {
  const value = numberParam(url, name);
  if (value !== undefined && (!Number.isInteger(value) || value < 0)) {
    throw new HttpError(400, 'BAD_REQUEST', `${name} must be a non-negative integer`);
  }
  return value;
}

function numberParam(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new HttpError(400, 'BAD_REQUEST', `${name} must be a non-negative number`);
  return value;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed || res.writableEnded) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}
