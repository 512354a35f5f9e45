import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubRegistry {
  url: string;
  /** Registrations (POSTs) it has received. */
  posts(): number;
  close(): Promise<void>;
}

/**
 * An HTTP server standing where the schema registry would: reads each call's body, counts
 * registrations, and lets `handle` answer, forward (forwardTo), fail, or never answer.
 */
export async function stubRegistry(handle: (req: IncomingMessage, res: ServerResponse, body: Buffer) => unknown): Promise<StubRegistry> {
  let posts = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method === 'POST') posts++;
      Promise.resolve(handle(req, res, Buffer.concat(chunks))).catch((error: unknown) => {
        res.writeHead(502);
        res.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    posts: () => posts,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Passes a call on to the registry at `upstream` and its answer back. */
export async function forwardTo(upstream: string, req: IncomingMessage, res: ServerResponse, body: Buffer, timeoutMs = 10_000): Promise<void> {
  const answer = await fetch(`${upstream}${req.url}`, {
    method: req.method,
    headers: { 'content-type': req.headers['content-type'] ?? 'application/json', accept: req.headers.accept ?? '*/*' },
    ...(body.length > 0 ? { body: body.toString('utf8') } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  });
  res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
  res.end(Buffer.from(await answer.arrayBuffer()));
}
