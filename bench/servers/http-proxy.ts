// The reference contender: node-http-proxy with a keep-alive agent, routing on the baggage key the way a Node team would write it.
// usage: node dist/bench/servers/http-proxy.js <baselinePort> <routes-file>   → prints "listening <port>"
import { Agent, createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import httpProxy from 'http-proxy';

const [baselinePort, routesFile] = process.argv.slice(2);
const snapshot = JSON.parse(readFileSync(routesFile as string, 'utf8')) as { routes: { key: string; targets: Record<string, string> }[] };
// The same 10,000 routes the sidecar loads, as a Map (O(1) lookups, as in Laneway).
const routes = new Map<string, string>();
for (const route of snapshot.routes) routes.set(route.key, `http://${route.targets[baselinePort as string]}`);
const baseline = `http://127.0.0.1:${baselinePort}`;

// Without an agent http-proxy opens a connection per request (≈ half the throughput); the keep-alive
// agent is what its README recommends and what the reference figures used.
const agent = new Agent({ keepAlive: true, maxSockets: 128 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway');
  } else {
    res.destroy();
  }
});

// Equivalent routing, written idiomatically (a regex over the header): the work a typical hand-rolled
// router does, so the comparison with Laneway is like for like.
const KEY = /(?:^|,)\s*laneway\s*=\s*([^,;\s]+)/;

const server = createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
  const baggage = req.headers.baggage;
  let target = baseline;
  if (typeof baggage === 'string') {
    const m = KEY.exec(baggage);
    if (m) target = routes.get(decodeURIComponent(m[1] as string)) ?? baseline;
  }
  proxy.web(req, res, { target });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`listening ${address.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
