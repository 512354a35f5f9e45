import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.ts';

export interface HealthProbe {
  /** Alive: the process is not wedged. */
  live(): boolean;
  /** Ready: consuming, with its stores reachable. */
  ready(): boolean;
}

/** `/metrics`, `/healthz`, `/readyz` on the worker. */
export async function startMetricsServer(metrics: Metrics, health: HealthProbe, port: number, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      metrics.registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(body);
        })
        .catch((error: Error) => {
          res.writeHead(500).end(error.message);
        });
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      const ok = path === '/healthz' ? health.live() : health.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
