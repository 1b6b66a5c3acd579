// h2c and gRPC through a real sidecar process with real @grpc/grpc-js clients and servers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http2 from 'node:http2';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { freePort, startSidecar, type SidecarProcess } from '../helpers/processes.js';
import { writeRoutesFile } from '../helpers/routes.js';

import { EchoClient, startGrpcServer, type EchoStub, type Msg } from '../helpers/grpc.js';

const events: string[] = [];
let baseline: { server: grpc.Server; port: number };
let fork: { server: grpc.Server; port: number };
let sidecar: SidecarProcess;
let client: EchoStub;
const dir = mkdtempSync(join(tmpdir(), 'laneway-grpc-'));

function md(key?: string): grpc.Metadata {
  const m = new grpc.Metadata();
  if (key) m.set('baggage', `userId=alice,laneway=${key}`);
  return m;
}

function unary(req: Msg, key?: string, options: grpc.CallOptions = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    client.unary(req, md(key), options, (err: grpc.ServiceError | null, res: Record<string, unknown>) => (err ? reject(err) : resolve(res)));
  });
}

beforeAll(async () => {
  baseline = await startGrpcServer('baseline', events);
  fork = await startGrpcServer('fork', events);
  const dead = await freePort();
  const routes = join(dir, 'routes.json');
  writeRoutesFile(routes, [
    { key: 'g1', sandbox: 'pr-grpc', targets: { [String(baseline.port)]: `127.0.0.1:${fork.port}` } },
    { key: 'gdead', sandbox: 'pr-dead', targets: { [String(baseline.port)]: `127.0.0.1:${dead}` } },
  ]);
  sidecar = await startSidecar({ appPort: baseline.port, extra: ['--routes-file', routes, '--connect-timeout', '1s'] });
  client = new EchoClient(`127.0.0.1:${sidecar.port}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  }) as unknown as EchoStub;
});

afterAll(async () => {
  client?.close();
  await sidecar?.stop();
  baseline?.server.forceShutdown();
  fork?.server.forceShutdown();
});

describe('gRPC through the sidecar', () => {
  it('unary: baseline without a key, sandbox with one', async () => {
    expect(await unary({ text: 'hi' })).toMatchObject({ from: 'baseline', text: 'hi' });
    expect(await unary({ text: 'hi' }, 'g1')).toMatchObject({ from: 'fork', baggage: 'userId=alice,laneway=g1' });
  });

  it('server streaming, client streaming and bidirectional calls follow the key', async () => {
    for (const [key, from] of [[undefined, 'baseline'], ['g1', 'fork']] as const) {
      const streamed: unknown[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = client.serverStream({ n: 5 }, md(key)) as grpc.ClientReadableStream<unknown>;
        call.on('data', (m) => streamed.push(m));
        call.on('end', resolve);
        call.on('error', reject);
      });
      expect(streamed).toEqual([0, 1, 2, 3, 4].map((i) => ({ from, i })));

      const summed = await new Promise<unknown>((resolve, reject) => {
        const call = client.clientStream(md(key), (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))) as grpc.ClientWritableStream<Msg>;
        for (let n = 1; n <= 10; n++) call.write({ n });
        call.end();
      });
      expect(summed).toEqual({ from, sum: 55 });

      const echoed: unknown[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = client.bidi(md(key)) as grpc.ClientDuplexStream<Msg, unknown>;
        call.on('data', (m) => {
          echoed.push(m);
          if (echoed.length < 3) call.write({ text: `m${echoed.length}` });
          else call.end();
        });
        call.on('end', resolve);
        call.on('error', reject);
        call.write({ text: 'm0' });
      });
      expect(echoed).toEqual([0, 1, 2].map((i) => ({ from, text: `m${i}` })));
    }
  });

  it('status codes, messages and trailing metadata from the sandbox reach the client', async () => {
    const err = (await unary({ fail: true }, 'g1').catch((e) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toBe('not found at fork');
    expect(err.metadata.get('x-detail')).toEqual(['fork-detail']);
  });

  it('large messages (5 MB) and deadlines pass through', async () => {
    const res = await unary({ big: 5 * 1024 * 1024 }, 'g1', { deadline: Date.now() + 10_000 });
    expect(String(res.text).length).toBe(5 * 1024 * 1024);
    expect(res.hasDeadline).toBe(true);
    const late = (await unary({ slow: true }, 'g1', { deadline: Date.now() + 200 }).catch((e) => e)) as grpc.ServiceError;
    expect(late.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it('client cancellation reaches the server', async () => {
    const before = events.filter((e) => e === 'fork:cancelled').length;
    await new Promise<void>((resolve) => {
      const call = client.serverStream({ n: 1000 }, md('g1')) as grpc.ClientReadableStream<unknown>;
      let got = 0;
      call.on('data', () => {
        if (++got === 2) call.cancel();
      });
      call.on('error', () => resolve());
    });
    const deadline = Date.now() + 3000;
    while (events.filter((e) => e === 'fork:cancelled').length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(events.filter((e) => e === 'fork:cancelled').length).toBe(before + 1);
  });

  it('sandbox down → UNAVAILABLE promptly, never the baseline', async () => {
    const started = Date.now();
    const err = (await unary({ text: 'x' }, 'gdead').catch((e) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toMatch(/LANEWAY_ERR_SANDBOX_(UNREACHABLE|TIMEOUT)/);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(await unary({ text: 'still fine' })).toMatchObject({ from: 'baseline' });
  });

  it('counts HTTP/2 requests in the sidecar metrics', async () => {
    const metrics = await (await request(`${sidecar.admin}/metrics`)).body.text();
    expect(metrics).toMatch(/laneway_requests_total\{decision="sandbox",protocol="h2"\} [1-9]/);
    expect(metrics).toMatch(/laneway_requests_total\{decision="baseline",protocol="h2"\} [1-9]/);
    expect(metrics).toMatch(/laneway_requests_total\{decision="error",protocol="h2"\} [1-9]/);
  });
});

/** GET over an existing HTTP/2 session; resolves with the body text. */
function h2Text(session: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path });
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => resolve(text));
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP/1.1 and h2c on one port', () => {
  let app: NetServer;
  let sc: SidecarProcess;
  beforeAll(async () => {
    // An app that itself speaks both protocols on one port, like many gRPC-gateway style services.
    const h1 = createHttpServer((req, res) => res.end(`h1 ${req.url}`));
    const h2 = http2.createServer((req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('h2 slow'), 300);
      else if (req.url === '/goaway') {
        // Graceful GOAWAY: streams up to this one complete, new ones must use a new connection.
        res.end('h2 goaway', () => req.stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, req.stream.id ?? 0));
      } else res.end(`h2 ${req.url}`);
    });
    app = createNetServer((socket) => {
      socket.once('data', (chunk) => {
        socket.pause();
        socket.unshift(chunk);
        if (chunk.subarray(0, 3).toString() === 'PRI') h2.emit('connection', socket);
        else {
          h1.emit('connection', socket);
          socket.resume();
        }
      });
    });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    const appPort = (app.address() as { port: number }).port;
    const routes = join(dir, 'mixed.json');
    writeRoutesFile(routes, []);
    sc = await startSidecar({ appPort, extra: ['--routes-file', routes] });
  });
  afterAll(async () => {
    await sc?.stop();
    app?.close();
  });

  it('interleaves HTTP/1.1 and h2c clients', async () => {
    const session = http2.connect(`http://127.0.0.1:${sc.port}`);
    const h2get = (path: string): Promise<string> => h2Text(session, path);
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2 === 0 ? h2get(`/h2-${i}`) : request(`http://127.0.0.1:${sc.port}/h1-${i}`).then((r) => r.body.text()),
        ),
      );
      results.forEach((text, i) => expect(text).toBe(i % 2 === 0 ? `h2 /h2-${i}` : `h1 /h1-${i}`));
    } finally {
      session.close();
    }
  });

  it('an upstream GOAWAY fails no stream: in-flight ones finish, new ones use a new session', async () => {
    const session = http2.connect(`http://127.0.0.1:${sc.port}`);
    const h2get = (path: string): Promise<string> => h2Text(session, path);
    try {
      const slow = h2get('/slow');
      await new Promise((r) => setTimeout(r, 50));
      expect(await h2get('/goaway')).toBe('h2 goaway');
      const after = await Promise.all([h2get('/a1'), h2get('/a2')]);
      expect(after).toEqual(['h2 /a1', 'h2 /a2']);
      expect(await slow).toBe('h2 slow');
    } finally {
      session.close();
    }
  });
});
