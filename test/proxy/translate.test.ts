// HTTP/1.1 ↔ HTTP/2 translation per app port: {client HTTP/1.1, client h2c} × {app http1, app h2c} × {baseline, fork}, through a real sidecar process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import http2, { type ClientHttp2Session } from 'node:http2';
import { startLaneway, type Started } from '../helpers/processes.js';
import { writeRoutesFile } from '../helpers/routes.js';
import { BIG, BIG_SHA, bigBody, sendH1, sendH2, startProtocolApp, type Exchange, type ProtocolApp, type SendOptions } from '../helpers/protocol-apps.js';

const KEY = 'fk7q2';
const baggage = { baggage: `laneway=${KEY}` };
const dir = mkdtempSync(join(tmpdir(), 'laneway-translate-'));

interface Sidecar extends Started {
  /** listen port by app port */
  readonly ports: Map<number, number>;
  readonly admin: string;
}

/** A sidecar with one listener per `--port` spec; the listening line gives each bound port. */
async function startTranslatingSidecar(portSpecs: string[], routesFile: string, extra: string[] = []): Promise<Sidecar> {
  const started = await startLaneway(
    ['sidecar', '--workload', 'default/orders', ...portSpecs.flatMap((p) => ['--port', p]), '--admin', '127.0.0.1:0', '--routes-file', routesFile, '--log-level', 'info', ...extra],
    /"msg":"sidecar listening"/,
  );
  const line = /[^\n]*"msg":"sidecar listening"[^\n]*/.exec(started.output())![0];
  const { ports, admin } = JSON.parse(line) as { ports: string[]; admin: string };
  const byApp = new Map<number, number>();
  for (const p of ports) {
    const m = /:(\d+)->[^:]+:(\d+)/.exec(p)!;
    byApp.set(Number(m[2]), Number(m[1]));
  }
  return { ...started, ports: byApp, admin: `http://${admin}` };
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let h1App: ProtocolApp;
let h2App: ProtocolApp;
let h1Fork: ProtocolApp;
let h2Fork: ProtocolApp;
let sidecar: Sidecar;
const sessions = new Map<number, ClientHttp2Session>();

beforeAll(async () => {
  [h1App, h2App, h1Fork, h2Fork] = await Promise.all([
    startProtocolApp('h1-app', 'http1'),
    startProtocolApp('h2-app', 'h2c'),
    startProtocolApp('h1-fork', 'http1'),
    startProtocolApp('h2-fork', 'h2c'),
  ]);
  // Each fork declares a protocol unlike its baseline's (a migration): h2c behind the HTTP/1.1 port, HTTP/1.1 behind the h2c one.
  const routes = writeRoutesFile(join(dir, 'routes.json'), [
    { key: KEY, sandbox: 'pr-18', targets: { [h1App.port]: `h2c://127.0.0.1:${h2Fork.port}`, [h2App.port]: `http://127.0.0.1:${h1Fork.port}` } },
  ]);
  sidecar = await startTranslatingSidecar([`0:${h1App.port}/http1`, `0:${h2App.port}/h2c`], routes);
});

afterAll(async () => {
  for (const s of sessions.values()) s.close();
  await sidecar?.stop();
  await Promise.all([h1App, h2App, h1Fork, h2Fork].map((a) => a?.close()));
});

type ClientKind = 'http1' | 'h2c';

function session(port: number): ClientHttp2Session {
  let s = sessions.get(port);
  if (s === undefined || s.closed || s.destroyed) {
    s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', () => {});
    sessions.set(port, s);
  }
  return s;
}

function send(client: ClientKind, port: number, opts: SendOptions): Promise<Exchange> {
  return client === 'http1' ? sendH1(port, opts) : sendH2(session(port), opts);
}

interface Cell {
  client: ClientKind;
  /** the app port (its baseline app's protocol) */
  port: 'http1' | 'h2c';
  path: 'baseline' | 'fork';
}

const cells: Cell[] = [];
for (const client of ['http1', 'h2c'] as const) for (const port of ['http1', 'h2c'] as const) for (const path of ['baseline', 'fork'] as const) cells.push({ client, port, path });

/** Who answers a cell, and in which protocol it speaks. */
function served(cell: Cell): ProtocolApp {
  if (cell.port === 'http1') return cell.path === 'baseline' ? h1App : h2Fork;
  return cell.path === 'baseline' ? h2App : h1Fork;
}

function listenPort(cell: Cell): number {
  return sidecar.ports.get(cell.port === 'http1' ? h1App.port : h2App.port)!;
}

const name = (c: Cell): string => `client ${c.client} → ${c.port} port, ${c.path} (app speaks ${c.port === 'http1' ? (c.path === 'baseline' ? 'http1' : 'h2c') : c.path === 'baseline' ? 'h2c' : 'http1'})`;

describe.each(cells)('translation matrix: %s', (cell) => {
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({ ...(cell.path === 'fork' ? baggage : {}), ...extra });
  const app = (): ProtocolApp => served(cell);
  const label = name(cell);

  it(`${label}: status, headers, routing headers and the app's own protocol`, async () => {
    const id = `/echo?cell=${cell.client}-${cell.port}-${cell.path}`;
    // An HTTP/1.1 client may name its own hop-by-hop headers (RFC 9110 §7.6.1); HTTP/2 forbids connection headers outright.
    const hop: Record<string, string> = cell.client === 'http1' ? { connection: 'x-hop', 'x-hop': 'secret' } : {};
    const res = await send(cell.client, listenPort(cell), { path: id, headers: headers({ 'x-custom': 'yes', cookie: 'c1=1', ...hop }) });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body.toString()) as { name: string; version: string; headers: Record<string, string> };
    expect(body.name).toBe(app().name);
    // The app was spoken to in its own protocol, whatever the client spoke.
    expect(body.version).toBe(app().protocol === 'h2c' ? '2.0' : '1.1');
    expect(res.headers['x-served-by']).toBe(app().name);
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(res.headers['laneway-sandbox']).toBe(cell.path === 'fork' ? 'pr-18' : undefined);
    // No hop-by-hop header crosses a hop, and none at all reaches an HTTP/2 app; the Host / :authority is the client's.
    expect(body.headers['x-hop']).toBeUndefined();
    if (app().protocol === 'h2c') for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'http2-settings', 'host']) expect(body.headers[name]).toBeUndefined();
    else expect(body.headers.connection ?? 'keep-alive').toBe('keep-alive');
    expect(body.headers['x-custom']).toBe('yes');
    expect(body.headers.cookie).toBe('c1=1');
    const authority = app().protocol === 'h2c' ? body.headers[':authority'] : body.headers.host;
    expect(authority).toBe(`127.0.0.1:${listenPort(cell)}`);
    expect(body.headers['laneway-hops']).toBe(cell.path === 'fork' ? '1' : undefined);
    expect(body.headers.via).toMatch(/laneway/);
  });

  it(`${label}: a 5 MB streamed upload arrives whole`, async () => {
    const res = await send(cell.client, listenPort(cell), { method: 'POST', path: '/upload', headers: headers({ 'content-type': 'application/octet-stream' }), body: bigBody });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ bytes: BIG, sha: BIG_SHA });
  });

  it(`${label}: a 5 MB streamed download arrives whole`, async () => {
    const res = await send(cell.client, listenPort(cell), { path: '/download', headers: headers() });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(BIG);
    expect(createHash('sha256').update(res.body).digest('hex')).toBe(BIG_SHA);
  });

  it(`${label}: trailers both ways where the protocols carry them`, async () => {
    const res = await send(cell.client, listenPort(cell), { method: 'POST', path: '/trailers', headers: headers({ te: 'trailers' }), body: async function* () { yield Buffer.from('chunk'); }, trailers: { 'x-client-trailer': 'from-client' } });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('body before trailers');
    // Response trailers reach every client: chunked HTTP/1.1 carries them, as HTTP/2 does.
    expect(res.trailers['x-app-trailer']).toBe('done');
    // Request trailers are forwarded where the sidecar translates; the native paths forward none (README "Protocol translation").
    const native = (cell.client === 'http1') === (app().protocol === 'http1');
    expect(res.trailers['x-echo-trailer']).toBe(native ? 'none' : 'from-client');
    if (app().protocol === 'h2c') expect(app().headers.get('/trailers')?.te).toBe('trailers');
  });

  it(`${label}: a client that goes away mid-response aborts the app's request`, async () => {
    const path = `/hold?cell=${cell.client}-${cell.port}-${cell.path}`;
    const port = listenPort(cell);
    if (cell.client === 'http1') {
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path, headers: headers(), agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => {});
        req.on('close', () => resolve());
        setTimeout(() => reject(new Error('no first byte')), 10_000).unref();
        req.end();
      });
    } else {
      const s = session(port);
      const stream = s.request({ ':path': path, ...headers() }, { endStream: true });
      stream.on('error', () => {});
      await new Promise<void>((resolve) => stream.once('data', () => resolve()));
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }
    await until(() => app().events.includes(`closed ${path}`), `${app().name} to see ${path} closed`);
  });

  it(`${label}: an upstream reset mid-response reaches the client as an error, never a clean end`, async () => {
    await expect(send(cell.client, listenPort(cell), { path: '/reset', headers: headers() })).rejects.toThrow(/aborted|incomplete|reset|socket hang up|ECONNRESET|NGHTTP2_INTERNAL_ERROR|NGHTTP2_CANCEL/);
  });
});

describe('gRPC is never translated', () => {
  it('an HTTP/1.1 gRPC request to an h2c app is refused with LANEWAY_ERR_GRPC_NEEDS_HTTP2', async () => {
    const before = h2App.seen.length;
    const res = await sendH1(sidecar.ports.get(h2App.port)!, { method: 'POST', path: '/echo.Echo/Say', headers: { 'content-type': 'application/grpc' }, body: async function* () { yield Buffer.alloc(5); } });
    expect(res.status).toBe(502);
    expect(res.headers['laneway-error']).toBe('LANEWAY_ERR_GRPC_NEEDS_HTTP2');
    expect(JSON.parse(res.body.toString()).error.code).toBe('LANEWAY_ERR_GRPC_NEEDS_HTTP2');
    expect(h2App.seen.length).toBe(before);
  });
  it('gRPC-Web (made for HTTP/1.1) is translated like any request', async () => {
    const res = await sendH1(sidecar.ports.get(h2App.port)!, { method: 'POST', path: '/grpc-web', headers: { 'content-type': 'application/grpc-web+proto' }, body: async function* () { yield Buffer.alloc(5); } });
    expect(res.status).toBe(200);
  });
  it('an h2c gRPC request to an HTTP/1.1 app gets a gRPC status naming the code, and the app sees nothing', async () => {
    const before = h1App.seen.length;
    const stream = session(sidecar.ports.get(h1App.port)!).request({ ':method': 'POST', ':path': '/echo.Echo/Say', 'content-type': 'application/grpc', te: 'trailers' });
    stream.end(Buffer.alloc(5));
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', (h) => resolve(h)));
    expect(headers[':status']).toBe(200);
    expect(headers['grpc-status']).toBe('14');
    expect(headers['laneway-error']).toBe('LANEWAY_ERR_GRPC_NEEDS_HTTP2');
    expect(decodeURIComponent(String(headers['grpc-message']))).toMatch(/^LANEWAY_ERR_GRPC_NEEDS_HTTP2: gRPC needs HTTP\/2/);
    expect(h1App.seen.length).toBe(before);
  });
});

describe('hostile or odd input on translated paths', () => {
  it('an h2c GET with a body but no content-length reaches an HTTP/1.1 app chunked, never as a smuggled next request', async () => {
    const before = h1App.seen.length;
    const res = await sendH2(session(sidecar.ports.get(h1App.port)!), { method: 'GET', path: '/echo?get-with-body', body: async function* () { yield Buffer.from('GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n'); } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString()).bytes).toBe(35);
    expect(h1App.seen.slice(before)).toEqual(['GET /echo?get-with-body HTTP/1.1']);
  });

  it('the loop guard answers 508 before any translation, from both client protocols', async () => {
    const before = [h1App.seen.length, h2App.seen.length, h1Fork.seen.length, h2Fork.seen.length];
    const viaH1 = await sendH1(sidecar.ports.get(h2App.port)!, { path: '/echo?loop', headers: { ...baggage, 'laneway-hops': '8' } });
    const viaH2 = await sendH2(session(sidecar.ports.get(h1App.port)!), { path: '/echo?loop', headers: { ...baggage, 'laneway-hops': '8' } });
    for (const res of [viaH1, viaH2]) {
      expect(res.status).toBe(508);
      expect(res.headers['laneway-error']).toBe('LANEWAY_ERR_LOOP_DETECTED');
    }
    expect([h1App.seen.length, h2App.seen.length, h1Fork.seen.length, h2Fork.seen.length]).toEqual(before);
  });

  it('HEAD and 204 answers end cleanly on both translated paths (no body, no hang)', async () => {
    const h1ToH2 = sidecar.ports.get(h2App.port)!;
    const h2ToH1 = session(sidecar.ports.get(h1App.port)!);
    for (const res of [await sendH1(h1ToH2, { method: 'HEAD', path: '/echo?head' }), await sendH2(h2ToH1, { method: 'HEAD', path: '/echo?head' })]) {
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(0);
    }
    for (const res of [await sendH1(h1ToH2, { path: '/nocontent' }), await sendH2(h2ToH1, { path: '/nocontent' })]) {
      expect(res.status).toBe(204);
      expect(res.body.length).toBe(0);
    }
  });

  it('an HTTP/1.1 GET with a body reaches an h2c app with its body', async () => {
    const res = await sendH1(sidecar.ports.get(h2App.port)!, { method: 'GET', path: '/echo?h1-get-with-body', headers: { 'content-length': '5' }, body: async function* () { yield Buffer.from('hello'); } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString()).bytes).toBe(5);
  });

  it('an HTTP/1.1 TE other than trailers is not sent to an h2c app (RFC 9113 §8.2.2)', async () => {
    const res = await sendH1(sidecar.ports.get(h2App.port)!, { path: '/echo?te', headers: { te: 'gzip' } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString()).headers.te).toBeUndefined();
  });
});

describe('Upgrade: h2c', () => {
  it('is stripped: the app gets a plain HTTP/1.1 request, never an upgrade', async () => {
    const res = await sendH1(sidecar.ports.get(h1App.port)!, { path: '/echo?upgrade', headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' } });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body.toString()) as { headers: Record<string, string> };
    expect(body.headers.upgrade).toBeUndefined();
    expect(body.headers['http2-settings']).toBeUndefined();
  });
});

describe('metrics', () => {
  it('count each translation by direction', async () => {
    const text = await (await fetch(`${sidecar.admin}/metrics`)).text();
    const h1h2 = Number(/laneway_translated_requests_total\{from="http1",to="h2c"\} (\d+)/.exec(text)?.[1]);
    const h2h1 = Number(/laneway_translated_requests_total\{from="h2c",to="http1"\} (\d+)/.exec(text)?.[1]);
    // Each of the 4 translated cells ran 6 requests at least.
    expect(h1h2).toBeGreaterThanOrEqual(12);
    expect(h2h1).toBeGreaterThanOrEqual(12);
  });
});

describe('auto: learned per upstream, never by resending a request', () => {
  let autoH1: ProtocolApp;
  let autoH2: ProtocolApp;
  let forkH2: ProtocolApp;
  let auto: Sidecar;
  const autoSessions: ClientHttp2Session[] = [];

  beforeAll(async () => {
    [autoH1, autoH2, forkH2] = await Promise.all([startProtocolApp('auto-h1', 'http1'), startProtocolApp('auto-h2', 'h2c'), startProtocolApp('auto-fork-h2', 'h2c')]);
    // The fork inherits its port's `auto`: learned on its own, apart from the baseline's.
    const routes = writeRoutesFile(join(dir, 'auto-routes.json'), [{ key: KEY, sandbox: 'pr-18', targets: { [autoH1.port]: `127.0.0.1:${forkH2.port}` } }]);
    auto = await startTranslatingSidecar([`0:${autoH1.port}/auto`, `0:${autoH2.port}/auto`], routes);
  });
  afterAll(async () => {
    for (const s of autoSessions) s.close();
    await auto?.stop();
    await Promise.all([autoH1, autoH2, forkH2].map((a) => a?.close()));
  });

  function client(kind: ClientKind, port: number): (opts: SendOptions) => Promise<Exchange> {
    if (kind === 'http1') return (opts) => sendH1(port, opts);
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', () => {});
    autoSessions.push(s);
    return (opts) => sendH2(s, opts);
  }

  it('an HTTP/1.1-only app and an h2c-only app (and a fork) all answer both client protocols; each POST reaches its app exactly once', async () => {
    const targets = [
      { app: () => autoH1, port: () => auto.ports.get(autoH1.port)!, headers: {} },
      { app: () => autoH2, port: () => auto.ports.get(autoH2.port)!, headers: {} },
      { app: () => forkH2, port: () => auto.ports.get(autoH1.port)!, headers: baggage },
    ];
    // The first requests race the probe: all of them wait for it, none is sent twice.
    const sent: { id: string; app: ProtocolApp; res: Promise<Exchange> }[] = [];
    for (const target of targets) {
      for (const kind of ['http1', 'h2c'] as const) {
        const send = client(kind, target.port());
        for (let i = 0; i < 3; i++) {
          const id = `/echo?auto=${target.app().name}-${kind}-${i}`;
          sent.push({ id, app: target.app(), res: send({ method: 'POST', path: id, headers: { ...target.headers, 'content-type': 'text/plain' }, body: async function* () { yield Buffer.from('once'); } }) });
        }
      }
    }
    for (const { id, app, res } of sent) {
      const got = await res;
      expect(got.status, id).toBe(200);
      const body = JSON.parse(got.body.toString()) as { name: string; version: string; bytes: number };
      expect(body).toMatchObject({ name: app.name, version: app.protocol === 'h2c' ? '2.0' : '1.1', bytes: 4 });
      expect(app.seen.filter((line) => line.startsWith(`POST ${id} `)), id).toHaveLength(1);
    }
    // The probe is no request: the HTTP/1.1 app's parser refused the preface, its handler never saw it.
    expect(autoH1.seen.every((line) => line.startsWith('POST /echo?auto='))).toBe(true);
    expect(autoH1.clientErrors).toBeGreaterThanOrEqual(1);
    // Learned once per upstream, and said so.
    const learned = auto.output().split('\n').filter((l) => l.includes('auto: learned the upstream protocol'));
    expect(learned.map((l) => JSON.parse(l) as { upstream: string; protocol: string }).map((l) => `${l.upstream}=${l.protocol}`).sort()).toEqual(
      [`127.0.0.1:${autoH1.port}=http1`, `127.0.0.1:${autoH2.port}=h2c`, `127.0.0.1:${forkH2.port}=h2c`].sort(),
    );
  });

  it('a POST the app took and dropped is answered 502 and never sent again, on either learned protocol', async () => {
    for (const app of [autoH1, autoH2]) {
      for (const kind of ['http1', 'h2c'] as const) {
        const id = `/drop?${app.name}-${kind}`;
        const send = client(kind, auto.ports.get(app.port)!);
        const res = await send({ method: 'POST', path: id, body: async function* () { yield Buffer.from('once'); } }).catch((err: Error) => err);
        if (res instanceof Error) expect(res.message).toMatch(/reset|aborted|socket hang up/);
        else expect(res.status, id).toBe(502);
        // Wait a moment's worth of event-loop turns for a retry that must not come.
        await new Promise((r) => setTimeout(r, 100));
        expect(app.seen.filter((line) => line.startsWith(`POST ${id} `)), id).toHaveLength(1);
      }
    }
  });
});

describe('auto: an upstream that changes protocol at the same address is learned again', () => {
  it('HTTP/1.1 ↔ h2c switches behind one auto port, met by either client: a failed request is answered and not resent, a later one reaches the new app', async () => {
    let app = await startProtocolApp('switch-h1', 'http1');
    const port = app.port;
    const side = await startTranslatingSidecar([`0:${port}/auto`], writeRoutesFile(join(dir, 'switch-routes.json'), []));
    const h2 = http2.connect(`http://127.0.0.1:${side.ports.get(port)!}`);
    h2.on('error', () => {});
    try {
      const listen = side.ports.get(port)!;
      expect(JSON.parse((await sendH1(listen, { path: '/echo?first' })).body.toString()).version).toBe('1.1');
      /** Sends until `app` answers (at most 3 tries); every request reaches the app at most once. */
      const until = async (send: (opts: SendOptions) => Promise<Exchange>, phase: string): Promise<number> => {
        for (let i = 0; i < 3; i++) {
          const id = `/echo?${phase}-${i}`;
          const res = await send({ method: 'POST', path: id, body: async function* () { yield Buffer.from('x'); } }).catch(() => undefined);
          expect(app.seen.filter((l) => l.startsWith(`POST ${id} `)).length, id).toBeLessThanOrEqual(1);
          if (res?.status === 200 && JSON.parse(res.body.toString()).name === app.name) return i;
          if (res !== undefined) expect(res.status, id).toBe(502);
        }
        throw new Error(`${phase}: the new app never answered`);
      };
      await app.close();
      app = await startProtocolApp('switch-h2', 'h2c', port);
      expect(await until((opts) => sendH1(listen, opts), 'to-h2c')).toBeLessThanOrEqual(2);
      await app.close();
      app = await startProtocolApp('switch-h1-again', 'http1', port);
      expect(await until((opts) => sendH2(h2, opts), 'back-to-http1')).toBeLessThanOrEqual(2);
      // And the other two detectors: an HTTP/2 client meeting an HTTP/2 app where HTTP/1.1 was learned …
      await app.close();
      app = await startProtocolApp('switch-h2-again', 'h2c', port);
      expect(await until((opts) => sendH2(h2, opts), 'h2-client-to-h2c')).toBeLessThanOrEqual(2);
      // … and an HTTP/1.1 client meeting an HTTP/1.1 app where h2c was learned.
      await app.close();
      app = await startProtocolApp('switch-h1-last', 'http1', port);
      expect(await until((opts) => sendH1(listen, opts), 'h1-client-to-http1')).toBeLessThanOrEqual(2);
    } finally {
      h2.close();
      await side.stop();
      await app.close();
    }
  });
});

describe('--fallback baseline on a translated path', () => {
  let app1: ProtocolApp;
  let app2: ProtocolApp;
  let side: Sidecar;
  beforeAll(async () => {
    [app1, app2] = await Promise.all([startProtocolApp('fb-h1', 'http1'), startProtocolApp('fb-h2', 'h2c')]);
    // Forks that declare a protocol and cannot be reached (port 9 on loopback: nothing listens).
    const routes = writeRoutesFile(join(dir, 'fb-routes.json'), [{ key: KEY, sandbox: 'pr-18', targets: { [app1.port]: 'h2c://127.0.0.1:9', [app2.port]: 'http://127.0.0.1:9' } }]);
    side = await startTranslatingSidecar([`0:${app1.port}/http1`, `0:${app2.port}/h2c`], routes, ['--fallback', 'baseline']);
  });
  afterAll(async () => {
    await side?.stop();
    await Promise.all([app1, app2].map((a) => a?.close()));
  });

  it('an unreachable h2c:// fork behind an HTTP/1.1 client falls back with the whole body', async () => {
    const res = await sendH1(side.ports.get(app1.port)!, { method: 'POST', path: '/upload', headers: baggage, body: bigBody });
    expect(res.headers['laneway-fallback']).toBe('1');
    expect(JSON.parse(res.body.toString())).toEqual({ bytes: BIG, sha: BIG_SHA });
  });

  it('an unreachable http:// fork behind an h2c client falls back with the whole body', async () => {
    const s = http2.connect(`http://127.0.0.1:${side.ports.get(app2.port)!}`);
    s.on('error', () => {});
    try {
      const res = await sendH2(s, { method: 'POST', path: '/upload', headers: baggage, body: bigBody });
      expect(res.headers['laneway-fallback']).toBe('1');
      expect(JSON.parse(res.body.toString())).toEqual({ bytes: BIG, sha: BIG_SHA });
    } finally {
      s.close();
    }
  });
});
