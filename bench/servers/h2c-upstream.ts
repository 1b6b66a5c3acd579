// The h2c counterpart of upstream.ts: a minimal node:http2 server (prior knowledge, no HTTP/1.1) answering every stream with its own name.
// usage: node dist/bench/servers/h2c-upstream.js <name>   → prints "listening <port>"
import http2 from 'node:http2';

const name = process.argv[2] ?? 'upstream';
const body = Buffer.from(name);
const headers = { ':status': 200, 'content-type': 'text/plain', 'content-length': String(body.length) };

const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on('stream', (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.respond(headers);
  stream.end(body);
});
server.on('sessionError', () => {});
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`listening ${address.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
