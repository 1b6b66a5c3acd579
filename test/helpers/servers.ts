// Test helpers: small real HTTP upstreams on 127.0.0.1 that report who answered and what they received.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';

export interface Upstream {
  readonly server: Server;
  readonly port: number;
  readonly name: string;
  /** requests seen, newest last */
  readonly seen: { method: string; url: string; headers: IncomingMessage['headers']; rawHeaders: string[] }[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An upstream that answers JSON `{name, url, headers}` unless a custom handler is given. */
export async function startUpstream(name: string, handler?: Handler): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    if (handler) {
      handler(req, res);
      return;
    }
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-served-by', name);
      res.end(JSON.stringify({ name, url: req.url, headers: req.headers }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    server,
    port,
    name,
    seen,
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
