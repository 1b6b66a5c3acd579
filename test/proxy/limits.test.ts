// Bounded resources under hostile or broken clients, through real sidecars: client timeouts, pipelining,
// 1xx floods, HTTP/2 stream limits, per-stream deadlines, rapid reset, oversized h2 headers, connection cap.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import http2, { type ClientHttp2Session } from 'node:http2';
import { request } from 'undici';
import { CLI, startSidecar, waitForOutput, type SidecarProcess } from '../helpers/processes.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';
import { writeRoutesFile } from '../helpers/routes.js';
import { until as pollUntil } from '../../core/poll.js';

const BIG_BODY = 'x'.repeat(32 * 1024);
const dir = mkdtempSync(join(tmpdir(), 'laneway-limits-'));

let app: Upstream;
/** requests for /big the app answered */
let bigServed = 0;
/** an h2c app: /hang never answers, anything else answers 200 */
let h2app: http2.Http2Server;
let h2Streams = 0;
/** keeps sending `102 Processing` and never a final response */
let processing: NetServer;
/** strict sidecar: short client timeouts, 1 s upstream timeout */
let strict: SidecarProcess;
/** default limits except 50 concurrent HTTP/2 streams */
let roomy: SidecarProcess;

beforeAll(async () => {
  app = await startUpstream('app', (req, res) => {
    if (req.url?.startsWith('/big')) {
      bigServed++;
      const seq = /i=(\d+)/.exec(req.url)?.[1] ?? '0';
      res.writeHead(200, { 'content-length': BIG_BODY.length, 'x-seq': seq.padStart(5, '0') });
      res.end(BIG_BODY);
      return;
    }
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  app.server.on('upgrade', (_req, socket: Socket) => {
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
  });
  h2app = http2.createServer();
  h2app.on('stream', (stream, headers) => {
    h2Streams++;
    stream.on('error', () => {});
    if (headers[':path'] === '/hang') return;
    stream.respond({ ':status': 200 });
    stream.end('h2 ok');
  });
  h2app.on('sessionError', () => {});
  await new Promise<void>((resolve) => h2app.listen(0, '127.0.0.1', resolve));
  processing = createNetServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      const timer = setInterval(() => socket.write('HTTP/1.1 102 Processing\r\n\r\n'), 5);
      socket.once('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => processing.listen(0, '127.0.0.1', resolve));
  const routes = join(dir, 'routes.json');
  writeRoutesFile(routes, [
    { key: 'keyH2', sandbox: 'pr-h2', targets: { [String(app.port)]: `127.0.0.1:${(h2app.address() as { port: number }).port}` } },
    { key: 'key102', sandbox: 'pr-102', targets: { [String(app.port)]: `127.0.0.1:${(processing.address() as { port: number }).port}` } },
  ]);
  const flags = ['--routes-file', routes];
  [strict, roomy] = await Promise.all([
    startSidecar({
      appPort: app.port,
      extra: [...flags, '--headers-timeout', '500ms', '--body-timeout', '500ms', '--idle-timeout', '700ms', '--tunnel-idle-timeout', '500ms', '--upstream-timeout', '1s'],
    }),
    startSidecar({ appPort: app.port, extra: [...flags, '--h2-max-streams', '50'] }),
  ]);
});

afterAll(async () => {
  await Promise.all([strict?.stop(), roomy?.stop()]);
  processing?.close();
  h2app?.close();
  await app?.close();
});

interface Exchange {
  text: string;
  closed: boolean;
  ms: number;
}

/** Connects, lets `drive` write, and resolves with what was read when the sidecar closes (or after `waitMs`). */
function exchange(port: number, drive: (socket: Socket) => void, waitMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1', () => drive(socket));
    let text = '';
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, ms: performance.now() - started });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => {});
  });
}

async function metric(sidecar: SidecarProcess, name: string): Promise<number> {
  const text = await (await request(`${sidecar.admin}/metrics`)).body.text();
  const match = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  return match === null ? Number.NaN : Number(match[1]);
}

function until(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  return pollUntil(check, { timeoutMs, intervalMs: 50 });
}

function h2connect(sidecar: SidecarProcess): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${sidecar.port}`, { maxSendHeaderBlockLength: 256 * 1024 });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  ms: number;
}

function h2get(session: ClientHttp2Session, headers: http2.OutgoingHttpHeaders, timeoutMs = 8000): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const stream = session.request(headers, { endStream: true });
    let answer: Omit<H2Answer, 'ms' | 'trailers'> | undefined;
    let trailers: http2.IncomingHttpHeaders = {};
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error(`no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    stream.on('response', (h) => (answer = { status: Number(h[':status']), headers: h }));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('error', reject);
    stream.resume();
    stream.on('close', () => {
      clearTimeout(timer);
      if (answer === undefined) reject(new Error(`stream closed without a response (rst ${stream.rstCode})`));
      else resolve({ ...answer, trailers, ms: performance.now() - started });
    });
  });
}

describe('item 7: client-side timeouts (HTTP/1)', () => {
  it('a connection that sends nothing is closed after --headers-timeout', async () => {
    const { closed, ms } = await exchange(strict.port, () => {}, 5000);
    expect(closed).toBe(true);
    expect(ms).toBeLessThan(4000);
  });

  it('a slowloris head (one header line every 100 ms) is answered 408 and closed after --headers-timeout', async () => {
    const { text, closed, ms } = await exchange(
      strict.port,
      (socket) => {
        socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
        const timer = setInterval(() => socket.write('x-slow: 1\r\n'), 100);
        socket.once('close', () => clearInterval(timer));
      },
      6000,
    );
    expect(closed).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeLessThan(5000);
  });

  it('a request body that stalls is answered 408 LANEWAY_ERR_REQUEST_TIMEOUT after --body-timeout, and the connection closes', async () => {
    const { text, closed, ms } = await exchange(
      strict.port,
      (socket) => socket.write('POST /upload HTTP/1.1\r\nHost: x\r\ncontent-length: 100\r\n\r\n0123456789'),
      6000,
    );
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toMatch(/\r\nlaneway-error: LANEWAY_ERR_REQUEST_TIMEOUT\r\n/i);
    expect(closed).toBe(true);
    expect(ms).toBeLessThan(4000);
  });

  it('a slow but moving body is not cut off: each byte restarts the body idle timer', async () => {
    const { text } = await exchange(
      strict.port,
      (socket) => {
        socket.write('POST /upload HTTP/1.1\r\nHost: x\r\ncontent-length: 8\r\n\r\n');
        let sent = 0;
        const timer = setInterval(() => {
          socket.write('a');
          if (++sent === 8) clearInterval(timer);
        }, 200); // 1.6 s in total, past the 500 ms idle limit, never idle for 500 ms
      },
      4000,
    );
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text.endsWith('ok')).toBe(true);
  });

  it('an idle keep-alive connection is closed after --idle-timeout', async () => {
    const { text, closed, ms } = await exchange(strict.port, (socket) => socket.write('GET /ka HTTP/1.1\r\nHost: x\r\n\r\n'), 5000);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(closed).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(600);
    expect(ms).toBeLessThan(4000);
  });

  it('an idle tunnel is closed after --tunnel-idle-timeout', async () => {
    const { text, closed, ms } = await exchange(
      strict.port,
      (socket) => socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
      5000,
    );
    expect(text).toMatch(/^HTTP\/1\.1 101 /);
    expect(closed).toBe(true);
    expect(ms).toBeLessThan(4000);
  });
});

describe('item 6: pipelining without reading responses', () => {
  it('stops reading the connection once --max-pipelined responses are pending, then serves every request in order', async () => {
    const total = 2000;
    bigServed = 0;
    let requests = '';
    for (let i = 0; i < total; i++) requests += `GET /big?i=${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
    const socket = connect(roomy.port, '127.0.0.1');
    socket.pause();
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(requests);
    // 2000 × 32 KiB = 64 MB of responses; the kernel's socket buffers hold a few MB of them.
    await new Promise((r) => setTimeout(r, 1500));
    const servedWhileNotReading = bigServed;
    expect(servedWhileNotReading).toBeLessThan(600);

    let text = '';
    let last = -1;
    let inOrder = true;
    let responses = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${responses} responses`)), 30_000);
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        let at: number;
        while ((at = text.indexOf('x-seq: ')) !== -1 && text.length >= at + 12) {
          const seq = Number(text.slice(at + 7, at + 12));
          if (seq !== last + 1) inOrder = false;
          last = seq;
          responses++;
          text = text.slice(at + 12);
        }
        if (responses === total) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.resume();
    });
    socket.destroy();
    expect(inOrder).toBe(true);
    expect(bigServed).toBe(total);
    expect(await until(async () => (await metric(roomy, 'laneway_open_connections')) === 0, 3000)).toBe(true);
  });
});

describe('item 8: 1xx responses do not reset --upstream-timeout', () => {
  it('an upstream sending 102 every 5 ms gets 504 after the upstream timeout', async () => {
    const started = performance.now();
    const res = await request(`http://127.0.0.1:${strict.port}/slow`, { headers: { baggage: 'laneway=key102' }, headersTimeout: 8000 });
    const body = await res.body.text();
    expect(res.statusCode).toBe(504);
    expect(res.headers['laneway-error']).toBe('LANEWAY_ERR_SANDBOX_TIMEOUT');
    expect(body).toContain('LANEWAY_ERR_SANDBOX_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(4000);
  });
});

describe('item 5: HTTP/2 streams are bounded', () => {
  it('at most --h2-max-streams concurrent streams per connection reach the app', async () => {
    const session = await h2connect(roomy);
    h2Streams = 0;
    for (let i = 0; i < 200; i++) {
      const stream = session.request({ ':path': '/hang', baggage: 'laneway=keyH2' }, { endStream: true });
      stream.on('error', () => {});
    }
    expect(await until(() => h2Streams >= 50, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(h2Streams).toBe(50);
    session.destroy();
    expect(await until(async () => (await metric(roomy, 'laneway_open_connections')) === 0, 3000)).toBe(true);
  });

  it('--upstream-timeout applies to each HTTP/2 stream: 504, and DEADLINE_EXCEEDED for gRPC', async () => {
    const session = await h2connect(strict);
    try {
      const plain = await h2get(session, { ':path': '/hang', baggage: 'laneway=keyH2' });
      expect(plain.status).toBe(504);
      expect(plain.headers['laneway-error']).toBe('LANEWAY_ERR_SANDBOX_TIMEOUT');
      expect(plain.ms).toBeLessThan(4000);
      const grpc = await h2get(session, { ':path': '/hang', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', baggage: 'laneway=keyH2' });
      expect(grpc.status).toBe(200);
      expect(grpc.headers['grpc-status'] ?? grpc.trailers['grpc-status']).toBe('4');
    } finally {
      session.destroy();
    }
  });

  it('an idle HTTP/2 connection is closed after --idle-timeout', async () => {
    const session = await h2connect(strict);
    const started = performance.now();
    await h2get(session, { ':path': '/ok', baggage: 'laneway=keyH2' });
    session.on('error', () => {});
    await new Promise<void>((resolve) => session.once('close', resolve));
    expect(performance.now() - started).toBeLessThan(4000);
  });

  it('a rapid-reset flood (HEADERS + RST_STREAM) closes the connection; few streams reach the app and no socket is left open', async () => {
    const session = await h2connect(roomy);
    session.on('error', () => {});
    let goaway: number | undefined;
    session.on('goaway', (code) => (goaway = code));
    const closed = new Promise<void>((resolve) => session.once('close', resolve));
    h2Streams = 0;
    for (let i = 0; i < 3000 && !session.destroyed && !session.closed; i++) {
      const stream = session.request({ ':path': '/ok', baggage: 'laneway=keyH2' }, { endStream: true });
      stream.on('error', () => {});
      stream.close(http2.constants.NGHTTP2_CANCEL);
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    const byServer = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
    expect(byServer).toBe(true);
    expect(goaway).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(h2Streams).toBeLessThan(500);
    expect(await until(async () => (await metric(roomy, 'laneway_open_connections')) === 0, 3000)).toBe(true);
    // The sidecar still serves HTTP/2 afterwards.
    const fresh = await h2connect(roomy);
    expect((await h2get(fresh, { ':path': '/ok', baggage: 'laneway=keyH2' })).status).toBe(200);
    fresh.destroy();
  });
});

describe('item 9: oversized HTTP/2 request headers', () => {
  it.each([20_000, 60_000])('%i bytes of headers get 431 LANEWAY_ERR_HEADERS_TOO_LARGE, as HTTP/1 does', async (size) => {
    const session = await h2connect(roomy);
    try {
      const before = h2Streams;
      const answer = await h2get(session, { ':path': '/ok', baggage: 'laneway=keyH2', 'x-big': 'a'.repeat(size) });
      expect(answer.status).toBe(431);
      expect(answer.headers['laneway-error']).toBe('LANEWAY_ERR_HEADERS_TOO_LARGE');
      expect(h2Streams).toBe(before);
      const grpc = await h2get(session, { ':path': '/ok', ':method': 'POST', 'content-type': 'application/grpc', baggage: 'laneway=keyH2', 'x-big': 'a'.repeat(size) });
      expect(grpc.headers['grpc-status']).toBe('8');
    } finally {
      session.destroy();
    }
  });

  it('headers just under the limit are forwarded', async () => {
    const session = await h2connect(roomy);
    try {
      expect((await h2get(session, { ':path': '/ok', baggage: 'laneway=keyH2', 'x-big': 'a'.repeat(12_000) })).status).toBe(200);
    } finally {
      session.destroy();
    }
  });
});

describe('item 7: connection cap under a low fd limit', () => {
  it('with `ulimit -n 256`, idle connections past the cap are refused and counted; accepted ones and the admin server keep working', async () => {
    const child = spawn(
      'bash',
      ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, CLI, 'sidecar', '--workload', 'default/orders', '--port', `0:${app.port}`, '--admin', '127.0.0.1:0', '--routes-file', join(dir, 'routes.json')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const output = await waitForOutput(child, /"msg":"sidecar listening"/, 'sidecar under ulimit', 15_000);
      const line = /[^\n]*"msg":"sidecar listening"[^\n]*/.exec(output())![0];
      const { ports, admin, maxConnections } = JSON.parse(line) as { ports: string[]; admin: string; maxConnections: number };
      // The default follows the fd limit: (256 - 64) / 2.
      expect(maxConnections).toBe(96);
      const port = Number(/:(\d+)->/.exec(ports[0]!)![1]);
      const sockets: Socket[] = [];
      let dropped = 0;
      for (let i = 0; i < 250; i++) {
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => {});
        socket.once('close', () => dropped++);
        sockets.push(socket);
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()).once('error', () => resolve()));
      }
      await until(() => dropped >= 250 - 96, 3000);
      expect(dropped).toBe(250 - 96);
      const metrics = await (await request(`http://${admin}/metrics`)).body.text();
      expect(metrics).toMatch(/^laneway_dropped_connections_total 154$/m);
      expect(metrics).toMatch(/^laneway_open_connections 96$/m);
      // An accepted idle connection still gets answers.
      const kept = sockets.find((s) => !s.destroyed)!;
      const answer = await new Promise<string>((resolve) => {
        let text = '';
        kept.on('data', (d: Buffer) => {
          text += d.toString('latin1');
          if (text.endsWith('ok')) resolve(text);
        });
        kept.write('GET /kept HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      for (const socket of sockets) socket.destroy();
      const ok = await until(async () => {
        try {
          return (await request(`http://127.0.0.1:${port}/after`)).statusCode === 200;
        } catch {
          return false;
        }
      }, 3000);
      expect(ok).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
