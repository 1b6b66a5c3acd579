// The admin server: health, readiness, the route table in use and Prometheus metrics. Off the data path.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { RouteState } from './route-state.js';

export interface AdminState {
  readonly routes: RouteState;
  /** the metrics registry, created on first use */
  registry(): Promise<Registry>;
  /** true once SIGTERM arrived: readiness fails so the endpoint is taken out of rotation */
  draining(): boolean;
}

export function createAdminServer(state: AdminState): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, 'text/plain', 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/healthz':
        send(200, 'text/plain', 'ok\n');
        return;
      case '/readyz': {
        if (state.draining()) send(503, 'text/plain', 'draining\n');
        else if (!state.routes.loaded) send(503, 'text/plain', 'no route table loaded yet\n');
        else send(200, 'text/plain', 'ready\n');
        return;
      }
      case '/routes':
        send(200, 'application/json', `${JSON.stringify(state.routes.describe(), null, 2)}\n`);
        return;
      case '/metrics':
        state
          .registry()
          .then(async (registry) => send(200, registry.contentType, await registry.metrics()))
          .catch((err: Error) => send(500, 'text/plain', `${err.message}\n`));
        return;
      default:
        send(404, 'text/plain', 'not found: try /healthz /readyz /routes /metrics\n');
    }
  });
}
