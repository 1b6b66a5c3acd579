// The cheap upstream the bench proxies to: a minimal node:http server answering every request with its own name.
// usage: node dist/bench/servers/upstream.js <name>   → prints "listening <port>"
import { createServer } from 'node:http';

const name = process.argv[2] ?? 'upstream';
// The body is the server's name, so the bench can check which upstream answered (routing correctness)
// with autocannon's expectBody, without a JSON parse per request.
const body = Buffer.from(name);
const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) };

const server = createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
  // Requests in the bench carry no body; resume() is the cheapest way to honour one if it ever does.
  req.resume();
  res.writeHead(200, headers);
  res.end(body);
});
// Proxies keep pooled connections across rounds; Node's 5 s default would close them between rounds.
server.headersTimeout = 70_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`listening ${address.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
