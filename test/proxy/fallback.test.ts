// `--fallback baseline` behaves the same on every protocol: HTTP/1, HTTP/2 (with and without a body, gRPC-shaped) and
// upgrades. An unreachable sandbox is answered by the baseline with `laneway-fallback: 1`; without the flag it is an error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import http2 from 'node:http2';
import { request } from 'undici';
import { freePort, startLaneway, type Started } from '../helpers/processes.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';
import { writeRoutesFile } from '../helpers/routes.js';

let app: Upstream;
let h2app: http2.Http2Server;
const h2seen: { path: string; body: string; headers: http2.IncomingHttpHeaders }[] = [];
const dir = mkdtempSync(join(tmpdir(), 'laneway-fallback-'));

interface Sidecar extends Started {
  readonly http1: number;
  readonly h2: number;
}
let withFallback: Sidecar;
let without: Sidecar;

async function sidecar(extra: string[]): Promise<Sidecar> {
  const h2port = (h2app.address() as { port: number }).port;
  const started = await startLaneway(
    ['sidecar', '--workload', 'default/orders', '--port', `0:${app.port}`, '--port', `0:${h2port}`, '--admin', '127.0.0.1:0', '--routes-file', join(dir, 'routes.json'), ...extra],
    /"msg":"sidecar listening"/,
  );
  const ports = [...started.output().matchAll(/127\.0\.0\.1:(\d+)->/g)].map((m) => Number(m[1]));
  return { ...started, http1: ports[0]!, h2: ports[1]! };
}

beforeAll(async () => {
  app = await startUpstream('baseline');
  app.server.on('upgrade', (req, socket) => {
    socket.on('error', () => {});
    socket.end(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nx-hops: ${req.headers['laneway-hops'] ?? 'none'}\r\n\r\n`);
  });
  h2app = http2.createServer();
  h2app.on('stream', (stream, headers) => {
    let body = '';
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('end', () => {
      h2seen.push({ path: String(headers[':path']), body, headers });
      stream.respond({ ':status': 200 });
      stream.end(`h2 baseline got ${body.length} bytes`);
    });
  });
  await new Promise<void>((resolve) => h2app.listen(0, '127.0.0.1', resolve));
  const h2port = (h2app.address() as { port: number }).port;
  const dead1 = await freePort();
  const dead2 = await freePort();
  writeRoutesFile(join(dir, 'routes.json'), [
    { key: 'keyDead', sandbox: 'pr-dead', targets: { [String(app.port)]: `127.0.0.1:${dead1}`, [String(h2port)]: `127.0.0.1:${dead2}` } },
  ]);
  [withFallback, without] = await Promise.all([sidecar(['--fallback', 'baseline']), sidecar([])]);
});

afterAll(async () => {
  await Promise.all([withFallback?.stop(), without?.stop()]);
  h2app?.close();
  await app?.close();
});

const DEAD = { baggage: 'laneway=keyDead' };

function h2call(port: number, headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ headers: http2.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const stream = session.request(headers, { endStream: body === undefined });
    let text = '';
    let answer: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (answer = h));
    stream.on('data', (d: Buffer) => (text += d.toString()));
    stream.on('error', reject);
    stream.on('close', () => {
      session.close();
      resolve({ headers: answer, text });
    });
    if (body !== undefined) stream.end(body);
  });
}

function upgrade(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nbaggage: laneway=keyDead\r\n\r\n'),
    );
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', () => {});
    setTimeout(() => socket.destroy(), 3000);
  });
}

describe('--fallback baseline on every protocol', () => {
  it('HTTP/1', async () => {
    const res = await request(`http://127.0.0.1:${withFallback.http1}/f`, { headers: DEAD });
    expect(res.statusCode).toBe(200);
    expect(res.headers['laneway-fallback']).toBe('1');
    const seen = (await res.body.json()) as { name: string; headers: Record<string, string> };
    expect(seen.name).toBe('baseline');
    // Nothing meant for the sandbox's path reaches the baseline.
    expect(seen.headers['laneway-hops']).toBeUndefined();
    expect(seen.headers['laneway-fork']).toBeUndefined();
  });

  it('HTTP/2 without a body', async () => {
    const { headers, text } = await h2call(withFallback.h2, { ':path': '/h2get', ...DEAD });
    expect(headers[':status']).toBe(200);
    expect(headers['laneway-fallback']).toBe('1');
    expect(text).toBe('h2 baseline got 0 bytes');
    expect(h2seen.at(-1)!.headers['laneway-hops']).toBeUndefined();
    expect(h2seen.at(-1)!.headers['laneway-fork']).toBeUndefined();
  });

  it('HTTP/2 with a body (as every gRPC call has): the baseline gets all of it', async () => {
    const body = 'x'.repeat(100_000);
    const { headers, text } = await h2call(withFallback.h2, { ':path': '/h2post', ':method': 'POST', 'content-type': 'application/grpc', ...DEAD }, body);
    expect(headers['laneway-fallback']).toBe('1');
    expect(text).toBe('h2 baseline got 100000 bytes');
    expect(h2seen.at(-1)!.body).toBe(body);
  });

  it('WebSocket upgrade', async () => {
    const text = await upgrade(withFallback.http1);
    expect(text).toMatch(/^HTTP\/1\.1 101 /);
    expect(text).toMatch(/\r\nlaneway-fallback: 1\r\n/i);
    expect(text).toMatch(/\r\nx-hops: none\r\n/i);
  });

  it('without the flag each is an error naming the sandbox, never the baseline', async () => {
    const res = await request(`http://127.0.0.1:${without.http1}/f`, { headers: DEAD });
    expect(res.statusCode).toBe(502);
    await res.body.dump();
    const before = h2seen.length;
    const h2 = await h2call(without.h2, { ':path': '/h2get', ...DEAD });
    expect(h2.headers[':status']).toBe(502);
    expect(h2.headers['laneway-error']).toBe('LANEWAY_ERR_SANDBOX_UNREACHABLE');
    const grpc = await h2call(without.h2, { ':path': '/h2post', ':method': 'POST', 'content-type': 'application/grpc', ...DEAD }, 'abc');
    expect(grpc.headers['grpc-status']).toBe('14');
    expect(h2seen.length).toBe(before);
    expect(await upgrade(without.http1)).toMatch(/^HTTP\/1\.1 502 [^]*laneway-error: LANEWAY_ERR_SANDBOX_UNREACHABLE/i);
  });
});

describe('HTTP/2 responses without trailers', () => {
  it('a request whose body ends in a DATA frame gets a complete response (the stream ends, it is not left open)', async () => {
    const started = performance.now();
    const { headers, text } = await h2call(without.h2, { ':path': '/plain-post', ':method': 'POST' }, 'hello');
    expect(headers[':status']).toBe(200);
    expect(text).toBe('h2 baseline got 5 bytes');
    expect(performance.now() - started).toBeLessThan(3000);
  });
});
