// The sidecar as a real process: routing by every key source, forwarding semantics, errors, reload and admin.
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { request } from 'undici';
import { freePort, startSidecar, type SidecarProcess } from '../helpers/processes.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';

const dir = mkdtempSync(join(tmpdir(), 'laneway-sidecar-'));
const routesFile = join(dir, 'routes.json');

function writeRoutes(revision: number, routes: { key: string; sandbox: string; targets: Record<string, string> }[]): void {
  // write-then-rename, like Kubernetes ConfigMap updates and careful editors
  writeFileSync(`${routesFile}.tmp`, JSON.stringify({ workload: 'default/orders', revision, routes }));
  renameSync(`${routesFile}.tmp`, routesFile);
}

let baseline: Upstream;
let fork: Upstream;
let fork2: Upstream;
let sidecar: SidecarProcess;
let deadPort: number;
let url: string;

async function get(path: string, headers: Record<string, string | string[]> = {}) {
  const res = await request(`${url}${path}`, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met in time');
}

beforeAll(async () => {
  baseline = await startUpstream('baseline');
  fork = await startUpstream('fork');
  fork2 = await startUpstream('fork2');
  deadPort = await freePort();
  writeRoutes(1, [
    { key: 'k1', sandbox: 'pr-1', targets: { [String(baseline.port)]: `127.0.0.1:${fork.port}` } },
    { key: 'k2', sandbox: 'pr-2', targets: { [String(baseline.port)]: `127.0.0.1:${fork2.port}` } },
    { key: 'kdead', sandbox: 'pr-dead', targets: { [String(baseline.port)]: `127.0.0.1:${deadPort}` } },
    { key: 'kother', sandbox: 'pr-other', targets: { '1': '127.0.0.1:1' } },
  ]);
  sidecar = await startSidecar({ appPort: baseline.port, extra: ['--routes-file', routesFile, '--connect-timeout', '1s'] });
  url = `http://127.0.0.1:${sidecar.port}`;
});

afterAll(async () => {
  await sidecar?.stop();
  await Promise.all([baseline?.close(), fork?.close(), fork2?.close()]);
});

describe('routing decision', () => {
  it('no key → baseline, untouched response (no laneway headers)', async () => {
    const res = await get('/a?x=1');
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ name: 'baseline', url: '/a?x=1' });
    expect(res.headers['laneway-sandbox']).toBeUndefined();
    expect(res.headers['x-served-by']).toBe('baseline');
  });

  it.each([
    ['baggage', { baggage: 'userId=alice,laneway=k1;ttl=1,isProduction=false' }],
    ['several baggage headers', { baggage: ['userId=alice', 'laneway=k1'] }],
    ['percent-encoded baggage', { baggage: 'laneway=%6B1' }],
    ['ot-baggage-laneway', { 'ot-baggage-laneway': 'k1' }],
    ['uberctx-laneway', { 'uberctx-laneway': 'k1' }],
    ['tracestate', { tracestate: 'rojo=00f067aa0ba902b7,laneway=k1' }],
    ['mixed-case header name', { BAGGAGE: 'laneway=k1' }],
  ])('key from %s → sandbox', async (_label, headers) => {
    const res = await get('/s', headers as Record<string, string>);
    expect(res.json().name).toBe('fork');
    expect(res.headers['laneway-sandbox']).toBe('pr-1');
  });

  it('baggage wins over the other sources', async () => {
    const res = await get('/', { baggage: 'laneway=k2', 'ot-baggage-laneway': 'k1' });
    expect(res.json().name).toBe('fork2');
  });

  it.each([
    ['unknown key', { baggage: 'laneway=nope' }],
    ['another key name', { baggage: 'laneway2=k1' }],
    ['malformed member', { baggage: 'laneway=k 1' }],
  ])('%s → baseline', async (_label, headers) => {
    const res = await get('/', headers);
    expect(res.json().name).toBe('baseline');
  });

  it('routes each request on one keep-alive connection by its own key', async () => {
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const results: { name: string; reused: boolean }[] = [];
      for (const key of ['k1', '', 'k2', 'k1', '', 'k2']) {
        results.push(
          await new Promise((resolve, reject) => {
            const req = httpRequest({ host: '127.0.0.1', port: sidecar.port, path: '/', agent, headers: key ? { baggage: `laneway=${key}` } : {} }, (res) => {
              let text = '';
              res.on('data', (d: Buffer) => (text += d.toString()));
              res.on('end', () => resolve({ name: JSON.parse(text).name, reused: req.reusedSocket }));
            });
            req.on('error', reject);
            req.end();
          }),
        );
      }
      expect(results.map((r) => r.name)).toEqual(['fork', 'baseline', 'fork2', 'fork', 'baseline', 'fork2']);
      expect(results.map((r) => r.reused)).toEqual([false, true, true, true, true, true]);
    } finally {
      agent.destroy();
    }
  });
});

describe('forwarding', () => {
  it('removes hop-by-hop headers, keeps Host, appends x-forwarded-for and via', async () => {
    const before = baseline.seen.length;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: sidecar.port,
          path: '/hop',
          headers: {
            host: 'orders.default.svc:8080',
            connection: 'keep-alive, x-private',
            'x-private': 'secret',
            'keep-alive': 'timeout=5',
            'proxy-connection': 'keep-alive',
            te: 'trailers',
            'x-forwarded-for': '203.0.113.7',
            'x-kept': 'yes',
          },
        },
        (res) => {
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end();
    });
    const seen = baseline.seen[before]!;
    expect(seen.headers.host).toBe('orders.default.svc:8080');
    expect(seen.headers['x-private']).toBeUndefined();
    expect(seen.headers['keep-alive']).toBeUndefined();
    expect(seen.headers['proxy-connection']).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
    expect(seen.headers['x-kept']).toBe('yes');
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(seen.headers.via).toBe('1.1 laneway');
    expect(seen.headers['laneway-hops']).toBeUndefined();
  });

  it('drops response headers the upstream lists in Connection, keeps the rest', async () => {
    const app = await startUpstream('conn', (req, res) => {
      req.resume();
      res.writeHead(200, { connection: 'keep-alive, x-internal-hop', 'x-internal-hop': 'secret', 'x-public': 'yes', 'content-length': '2' });
      res.end('ok');
    });
    const sc = await startSidecar({ appPort: app.port, extra: ['--routes-file', routesFile] });
    try {
      const res = await request(`http://127.0.0.1:${sc.port}/`);
      expect(await res.body.text()).toBe('ok');
      expect(res.headers['x-internal-hop']).toBeUndefined();
      expect(res.headers['x-public']).toBe('yes');
    } finally {
      await sc.stop();
      await app.close();
    }
  });

  it('adds a hop counter only towards sandboxes', async () => {
    const before = fork.seen.length;
    await get('/', { baggage: 'laneway=k1' });
    expect(fork.seen[before]!.headers['laneway-hops']).toBe('1');
  });

  it('streams POST bodies, chunked responses with trailers, HEAD, 204 and 304', async () => {
    const special = await startUpstream('special', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/204') {
          res.writeHead(204);
          res.end();
        } else if (req.url === '/304') {
          res.writeHead(304, { etag: '"v1"' });
          res.end();
        } else if (req.url === '/trailers') {
          res.writeHead(200, { trailer: 'x-checksum', 'content-type': 'text/plain' });
          res.write('part1-');
          res.write('part2');
          res.addTrailers({ 'x-checksum': 'abc123' });
          res.end();
        } else {
          res.writeHead(200, { 'content-type': 'text/plain', 'x-len': String(Buffer.concat(chunks).length) });
          res.end(req.method === 'HEAD' ? undefined : `echo:${Buffer.concat(chunks).toString()}`);
        }
      });
    });
    const sc = await startSidecar({ appPort: special.port, extra: ['--routes-file', routesFile] });
    try {
      const base = `http://127.0.0.1:${sc.port}`;
      const post = await request(`${base}/echo`, { method: 'POST', body: 'hello world' });
      expect(await post.body.text()).toBe('echo:hello world');
      expect(post.headers['x-len']).toBe('11');

      const chunked = await request(`${base}/echo`, {
        method: 'POST',
        body: Readable.from(
          (async function* () {
            yield 'a';
            yield 'b';
          })(),
        ),
      });
      expect(await chunked.body.text()).toBe('echo:ab');

      const trailers = await request(`${base}/trailers`);
      expect(await trailers.body.text()).toBe('part1-part2');
      expect(trailers.trailers['x-checksum']).toBe('abc123');

      const head = await request(`${base}/x`, { method: 'HEAD' });
      expect(head.statusCode).toBe(200);
      expect(await head.body.text()).toBe('');

      const noContent = await request(`${base}/204`);
      expect(noContent.statusCode).toBe(204);
      const notModified = await request(`${base}/304`, { headers: { 'if-none-match': '"v1"' } });
      expect(notModified.statusCode).toBe(304);
      expect(notModified.headers.etag).toBe('"v1"');
      await notModified.body.text();

      // Expect: 100-continue — the client waits for 100 before sending its body.
      const continued = await new Promise<string>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: sc.port, method: 'POST', path: '/echo', headers: { expect: '100-continue', 'content-length': '4' } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve(text));
        });
        req.on('continue', () => req.end('body'));
        req.on('error', reject);
      });
      expect(continued).toBe('echo:body');
    } finally {
      await sc.stop();
      await special.close();
    }
  });
});

describe('errors', () => {
  it('sandbox down → 502 JSON with laneway-error, never the baseline; baseline keeps working', async () => {
    const res = await get('/', { baggage: 'laneway=kdead' });
    expect(res.status).toBe(502);
    expect(res.headers['laneway-error']).toBe('LANEWAY_ERR_SANDBOX_UNREACHABLE');
    expect(res.headers['laneway-sandbox']).toBe('pr-dead');
    expect(res.json()).toEqual({
      error: { code: 'LANEWAY_ERR_SANDBOX_UNREACHABLE', message: expect.any(String), sandbox: 'pr-dead', target: `127.0.0.1:${deadPort}` },
    });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => get('/', i % 2 ? { baggage: 'laneway=kdead' } : {})));
    for (const [i, r] of results.entries()) expect(r.status).toBe(i % 2 ? 502 : 200);
  });

  it('a route without a target for this port → 502, not the baseline', async () => {
    const res = await get('/', { baggage: 'laneway=kother' });
    expect(res.status).toBe(502);
    expect(res.headers['laneway-error']).toBe('LANEWAY_ERR_SANDBOX_NO_PORT');
  });

  it('--fallback baseline serves from the baseline and says so', async () => {
    const sc = await startSidecar({ appPort: baseline.port, extra: ['--routes-file', routesFile, '--fallback', 'baseline'] });
    try {
      const res = await request(`http://127.0.0.1:${sc.port}/`, { headers: { baggage: 'laneway=kdead' } });
      expect(res.statusCode).toBe(200);
      expect(res.headers['laneway-fallback']).toBe('1');
      expect(res.headers['laneway-sandbox']).toBeUndefined();
      expect(((await res.body.json()) as { name: string }).name).toBe('baseline');
    } finally {
      await sc.stop();
    }
  });

  it('baseline app down → 502 with LANEWAY_ERR_BASELINE_UNREACHABLE', async () => {
    const sc = await startSidecar({ appPort: await freePort(), extra: ['--routes-file', routesFile] });
    try {
      const res = await request(`http://127.0.0.1:${sc.port}/`);
      expect(res.statusCode).toBe(502);
      expect(res.headers['laneway-error']).toBe('LANEWAY_ERR_BASELINE_UNREACHABLE');
      await res.body.text();
    } finally {
      await sc.stop();
    }
  });

  it('a route pointing back at the sidecar → 508 instead of a storm', async () => {
    const loopFile = join(dir, 'loop.json');
    const port = await freePort();
    writeFileSync(loopFile, JSON.stringify({ workload: 'default/orders', revision: 1, routes: [{ key: 'kloop', sandbox: 'loop', targets: { [String(baseline.port)]: `127.0.0.1:${port}` } }] }));
    // Both ports must be known before the sidecar starts (the route points at the first); freePort
    // releases what it found, so two calls can return the same port.
    let adminPort = await freePort();
    while (adminPort === port) adminPort = await freePort();
    const { startLaneway } = await import('../helpers/processes.js');
    const sc = await startLaneway(
      ['sidecar', '--workload', 'default/orders', '--port', `${port}:${baseline.port}`, '--admin', `127.0.0.1:${adminPort}`, '--routes-file', loopFile, '--max-hops', '4'],
      /sidecar listening/,
    );
    try {
      const res = await request(`http://127.0.0.1:${port}/`, { headers: { baggage: 'laneway=kloop' } });
      expect(res.statusCode).toBe(508);
      expect(res.headers['laneway-error']).toBe('LANEWAY_ERR_LOOP_DETECTED');
      await res.body.text();
      const metrics = await (await request(`http://127.0.0.1:${adminPort}/metrics`)).body.text();
      // 4 forwards, then the 5th hop refuses: a bounded chain, not a storm
      expect(metrics).toMatch(/laneway_requests_total\{decision="sandbox",protocol="http1"\} 4/);
      expect(metrics).toMatch(/laneway_requests_total\{decision="error",protocol="http1"\} 1/);
    } finally {
      await sc.stop();
    }
  });

  it('malformed requests get a 4xx and the process survives', async () => {
    const { connect } = await import('node:net');
    const reply = await new Promise<string>((resolve) => {
      const socket = connect(sidecar.port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', () => resolve(text));
    });
    expect(reply).toMatch(/^HTTP\/1.1 400/);
    const ok = await get('/');
    expect(ok.status).toBe(200);
  });
});

describe('abort propagation', () => {
  it('a client abort aborts the upstream request', async () => {
    // The upstream never ends its response, so only the sidecar aborting the upstream request closes it.
    let upstreamClosed!: (finished: boolean) => void;
    const closed = new Promise<boolean>((r) => (upstreamClosed = r));
    const slow = await startUpstream('slow', (req, res) => {
      res.writeHead(200);
      res.write('start');
      res.on('close', () => upstreamClosed(res.writableFinished));
    });
    const sc = await startSidecar({ appPort: slow.port, extra: ['--routes-file', routesFile] });
    try {
      const ac = new AbortController();
      const res = await request(`http://127.0.0.1:${sc.port}/`, { signal: ac.signal });
      expect(res.statusCode).toBe(200);
      let first = '';
      for await (const chunk of res.body) {
        first = String(chunk);
        break;
      }
      expect(first).toBe('start'); // the upstream response was streaming when the client left
      ac.abort();
      const timeout = new Promise<string>((r) => setTimeout(() => r('still open 5 s after the client aborted'), 5000).unref());
      // false: closed mid-response (aborted), not after res.end()
      expect(await Promise.race([closed, timeout])).toBe(false);
    } finally {
      // Upstream first: if the abort did not reach it, the sidecar would drain that request for 15 s.
      await slow.close();
      await sc.stop();
    }
  });

  it('an upstream reset mid-response closes the client side', async () => {
    const resetting = await startUpstream('reset', (req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setTimeout(() => req.socket.destroy(), 20);
    });
    const sc = await startSidecar({ appPort: resetting.port, extra: ['--routes-file', routesFile] });
    try {
      const res = await request(`http://127.0.0.1:${sc.port}/`);
      await expect(res.body.text()).rejects.toThrow();
    } finally {
      await sc.stop();
      await resetting.close();
    }
  });
});

describe('routes file and admin', () => {
  it('reloads a changed file, ignores a bad one, and reports it', async () => {
    expect((await get('/', { baggage: 'laneway=k3' })).json().name).toBe('baseline');
    writeRoutes(2, [{ key: 'k3', sandbox: 'pr-3', targets: { [String(baseline.port)]: `127.0.0.1:${fork.port}` } }]);
    await waitFor(async () => (await get('/', { baggage: 'laneway=k3' })).json().name === 'fork');

    writeFileSync(`${routesFile}.tmp`, '{"workload":"default/orders","revision":3,"routes":[{"key":"bad key"}]}');
    renameSync(`${routesFile}.tmp`, routesFile);
    await waitFor(async () => {
      const routes = (await (await request(`${sidecar.admin}/routes`)).body.json()) as { lastError: string | null };
      return routes.lastError !== null;
    });
    const routes = (await (await request(`${sidecar.admin}/routes`)).body.json()) as Record<string, unknown>;
    expect(routes).toMatchObject({ workload: 'default/orders', revision: 2, loaded: true, source: `file:${routesFile}` });
    expect(String(routes.lastError)).toMatch(/routes\[0\]\.key/);
    expect((await get('/', { baggage: 'laneway=k3' })).json().name).toBe('fork'); // last good table still in use
    const metrics = await (await request(`${sidecar.admin}/metrics`)).body.text();
    expect(metrics).toMatch(/laneway_route_table_rejected_total [1-9]/);
    expect(metrics).toMatch(/laneway_route_table_revision 2/);
  });

  it('serves /healthz, /readyz and Prometheus /metrics', async () => {
    expect((await request(`${sidecar.admin}/healthz`)).statusCode).toBe(200);
    const ready = await request(`${sidecar.admin}/readyz`);
    expect(ready.statusCode).toBe(200);
    await ready.body.text();
    const metrics = await (await request(`${sidecar.admin}/metrics`)).body.text();
    expect(metrics).toMatch(/laneway_requests_total\{decision="baseline",protocol="http1"\} [1-9]/);
    expect(metrics).toMatch(/laneway_requests_total\{decision="sandbox",protocol="http1"\} [1-9]/);
    expect(metrics).toMatch(/laneway_upstream_errors_total\{code="LANEWAY_ERR_SANDBOX_UNREACHABLE"\} [1-9]/);
  });

  it('is not ready until a route table is loaded', async () => {
    const missing = join(dir, 'missing.json');
    const sc = await startSidecar({ appPort: baseline.port, extra: ['--routes-file', missing] });
    try {
      const res = await request(`${sc.admin}/readyz`);
      expect(res.statusCode).toBe(503);
      await res.body.text();
      writeFileSync(missing, JSON.stringify({ workload: 'default/orders', revision: 1, routes: [] }));
      await waitFor(async () => {
        const r = await request(`${sc.admin}/readyz`);
        await r.body.text();
        return r.statusCode === 200;
      });
    } finally {
      await sc.stop();
    }
  });
});
