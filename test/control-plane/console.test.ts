// The web console's server side on a real socket: its assets and CSP under /ui/, GET /v1/workloads with the sidecars and the
// revisions they acknowledged (a real sidecar process included), the /v1/events change stream, /v1/whoami, and hostile inputs.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { FastifyInstance } from 'fastify';
import { CONSOLE_CSP, loadAssets } from '../../control-plane/api/ui.js';
import { EVENT_STREAMS_MAX } from '../../control-plane/events.js';
import { REPLICA_HEADER } from '../../model/console.js';
import { waitFor } from '../../core/poll.js';
import { startLaneway, freePort, type Started } from '../helpers/processes.js';
import { call, listenApp, removeTempDirs, spec, SseClient, tempDir } from './helpers.js';

let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  ({ app, url } = await listenApp());
});

afterAll(async () => {
  await app?.close();
  removeTempDirs();
});

describe('console assets under /ui/', () => {
  it('redirects / and /ui to /ui/, serves the page and its modules with the CSP, gzip and ETag revalidation', async () => {
    for (const path of ['/', '/ui']) {
      const res = await request(`${url}${path}`);
      await res.body.dump();
      expect(res.statusCode).toBe(302);
      expect(res.headers.location).toBe('/ui/');
    }
    const page = await request(`${url}/ui/`);
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(page.headers['x-frame-options']).toBe('DENY');
    const html = await page.body.text();
    expect(html).toContain('<script type="module" src="app.js"></script>');

    const js = await request(`${url}/ui/app.js`, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['content-encoding']).toBe('gzip');
    const etag = js.headers.etag as string;
    await js.body.dump();
    const again = await request(`${url}/ui/app.js`, { headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    await again.body.dump();
    const nested = await request(`${url}/ui/pages/sandboxes.js`);
    expect(nested.statusCode).toBe(200);
    await nested.body.dump();
  });

  it('answers 404 with the error body for unknown files, source maps and paths that try to leave the folder', async () => {
    for (const path of ['/ui/nope.js', '/ui/app.js.map', '/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/..%2f..%2fpackage.json', '/ui/pages/../../README.md']) {
      const res = await call(url, 'GET', path);
      expect(res.status, path).toBe(404);
      expect(res.body.error.code, path).toBe('LANEWAY_ERR_ROUTE_NOT_FOUND');
    }
  });

  it('says the console is not built when dist/ui is missing, and keeps its routes out of the OpenAPI document', async () => {
    expect(loadAssets(join(tempDir(), 'missing')).size).toBe(0);
    const doc = (await call(url, 'GET', '/openapi.json')).body;
    expect(Object.keys(doc.paths).filter((p: string) => p.startsWith('/ui') || p === '/')).toEqual([]);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/workloads', '/v1/events', '/v1/whoami', '/v1/workloads/{namespace}/{name}/acks']));
  });
});

describe('GET /v1/workloads and acknowledgements', () => {
  it('lists route tables and watching sidecars; an acknowledgement moves the sidecar up to date; the highest one stands', async () => {
    const put = await call(url, 'PUT', '/v1/sandboxes/ack-a', { spec: spec(['ns/acked']) });
    expect(put.status).toBe(201);
    const revision = put.body.status.revision as number;
    const watcher = await SseClient.connect(url, '/v1/workloads/ns/acked/routes/watch', { headers: { [REPLICA_HEADER]: 'pod-a/1' } });
    await watcher.waitEvents(1);
    const plain = await SseClient.connect(url, '/v1/workloads/ns/acked/routes/watch');
    await plain.waitEvents(1);

    let list = (await call(url, 'GET', '/v1/workloads')).body;
    let item = list.items.find((w: { workload: string }) => w.workload === 'ns/acked');
    expect(item.revision).toBe(revision);
    expect(item.routes.map((r: { sandbox: string }) => r.sandbox)).toEqual(['ack-a']);
    const named = item.sidecars.find((s: { replica: string }) => s.replica === 'pod-a/1');
    expect(named).toMatchObject({ acknowledged: null, lag: revision, resumedFrom: null });
    // No replica header: the peer address names it.
    expect(item.sidecars.some((s: { replica: string; address: string }) => s.replica === s.address && /^127\.0\.0\.1:\d+$/.test(s.address))).toBe(true);

    expect((await call(url, 'POST', '/v1/workloads/ns/acked/acks', { replica: 'pod-a/1', revision })).body).toEqual({ known: true });
    expect((await call(url, 'POST', '/v1/workloads/ns/acked/acks', { replica: 'pod-a/1', revision: revision - 1 })).body).toEqual({ known: true });
    list = (await call(url, 'GET', '/v1/workloads')).body;
    item = list.items.find((w: { workload: string }) => w.workload === 'ns/acked');
    expect(item.sidecars.find((s: { replica: string }) => s.replica === 'pod-a/1')).toMatchObject({ acknowledged: revision, lag: 0 });

    // A change the sidecar has not acknowledged shows as lag.
    const next = (await call(url, 'PUT', '/v1/sandboxes/ack-b', { spec: spec(['ns/acked']) })).body.status.revision as number;
    item = (await call(url, 'GET', '/v1/workloads')).body.items.find((w: { workload: string }) => w.workload === 'ns/acked');
    expect(item.sidecars.find((s: { replica: string }) => s.replica === 'pod-a/1').lag).toBe(next - revision);

    watcher.close();
    plain.close();
    await waitFor('the closed streams to leave the list', async () => {
      const w = (await call(url, 'GET', '/v1/workloads')).body.items.find((x: { workload: string }) => x.workload === 'ns/acked');
      return w.sidecars.length === 0;
    });
    // Gone: its acknowledgements are ignored, not stored for a replica nobody watches with.
    expect((await call(url, 'POST', '/v1/workloads/ns/acked/acks', { replica: 'pod-a/1', revision: next })).body).toEqual({ known: false });
  });

  it('refuses bad acknowledgements with the field named', async () => {
    const cases: [unknown, string][] = [
      [{ replica: 'has space', revision: 1 }, 'replica'],
      [{ replica: 'x'.repeat(129), revision: 1 }, 'replica'],
      [{ replica: 'ok', revision: -1 }, 'revision'],
      [{ replica: 'ok', revision: '1' }, 'revision'],
      [{ replica: 'ok' }, 'revision'],
      [{ replica: 'ok', revision: 1, extra: true }, 'extra'],
    ];
    for (const [body, field] of cases) {
      const res = await call(url, 'POST', '/v1/workloads/ns/acked/acks', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.field ?? res.body.error.message, JSON.stringify(body)).toContain(field);
    }
    expect((await call(url, 'POST', '/v1/workloads/NS/x/acks', { replica: 'ok', revision: 1 })).body.error.field).toBe('namespace');
  });

  it('a hostile replica header (too long, control characters) is replaced by the peer address', async () => {
    const watcher = await SseClient.connect(url, '/v1/workloads/ns/hostile/routes/watch', { headers: { [REPLICA_HEADER]: 'y'.repeat(500) } });
    await watcher.waitEvents(1);
    const item = (await call(url, 'GET', '/v1/workloads')).body.items.find((w: { workload: string }) => w.workload === 'ns/hostile');
    expect(item.sidecars).toHaveLength(1);
    expect(item.sidecars[0].replica).toBe(item.sidecars[0].address);
    watcher.close();
  });
});

describe('GET /v1/events', () => {
  it('says hello, then a change event per committed change and sidecar events as they connect, acknowledge and leave', async () => {
    const events = await SseClient.connect(url, '/v1/events');
    expect(events.status).toBe(200);
    expect(events.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    await events.until((c) => c.events.some((e) => e.event === 'hello'), 10_000, 'hello');
    const put = await call(url, 'PUT', '/v1/sandboxes/ev-a', { spec: spec(['ns/ev']) });
    await events.until((c) => c.events.some((e) => e.event === 'change'), 10_000, 'change');
    const change = events.events.find((e) => e.event === 'change')!;
    expect(change.id).toBe(String(put.body.status.revision));
    expect(change.data).toEqual({ revision: put.body.status.revision, workloads: ['ns/ev'], sandboxes: ['ev-a'] });

    const watcher = await SseClient.connect(url, '/v1/workloads/ns/ev/routes/watch', { headers: { [REPLICA_HEADER]: 'pod-ev' } });
    await call(url, 'POST', '/v1/workloads/ns/ev/acks', { replica: 'pod-ev', revision: put.body.status.revision });
    watcher.close();
    await events.until((c) => c.events.filter((e) => e.event === 'sidecar').length >= 3, 10_000, 'three sidecar events');
    expect(events.events.filter((e) => e.event === 'sidecar').map((e) => e.data)).toEqual([
      { workload: 'ns/ev', replica: 'pod-ev', state: 'connected' },
      { workload: 'ns/ev', replica: 'pod-ev', state: 'acknowledged' },
      { workload: 'ns/ev', replica: 'pod-ev', state: 'disconnected' },
    ]);
    events.close();
  });

  it('tells when a server-side run starts and finishes', async () => {
    const events = await SseClient.connect(url, '/v1/events');
    await events.until((c) => c.events.some((e) => e.event === 'hello'), 10_000, 'hello');
    const plan = { name: 'health', version: '1', steps: [{ id: 'up', http: { url: `${url}/healthz`, target: 'baseline' }, assert: [{ status: 200 }] }] };
    expect((await call(url, 'PUT', '/v1/plans/health', { plan })).status).toBe(201);
    const run = await call(url, 'POST', '/v1/plans/health/runs', { wait: true });
    expect(run.body.status, JSON.stringify(run.body)).toBe('passed');
    await events.until((c) => c.events.filter((e) => e.event === 'run').length >= 2, 10_000, 'two run events');
    expect(events.events.filter((e) => e.event === 'run').map((e) => e.data)).toEqual([
      { id: run.body.id, status: 'running' },
      { id: run.body.id, status: 'passed' },
    ]);
    events.close();
  });

  it(`accepts ${EVENT_STREAMS_MAX} streams and refuses the next with 503 until one closes`, async () => {
    const open = await Promise.all(Array.from({ length: EVENT_STREAMS_MAX }, () => SseClient.connect(url, '/v1/events')));
    try {
      await Promise.all(open.map((c) => c.until((x) => x.events.length > 0, 20_000, 'hello')));
      const refused = await call(url, 'GET', '/v1/events');
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('LANEWAY_ERR_TOO_MANY_WATCHERS');
      open.pop()!.close();
      await waitFor('a free slot', async () => {
        const again = await SseClient.connect(url, '/v1/events');
        again.close();
        return again.status === 200;
      });
    } finally {
      for (const c of open) c.close();
    }
  });

  it('whoami says open writer without tokens', async () => {
    expect((await call(url, 'GET', '/v1/whoami')).body).toEqual({ role: 'writer', open: true });
  });
});

describe('with tokens', () => {
  let authed: { app: FastifyInstance; url: string };
  beforeAll(async () => {
    const file = join(tempDir(), 'tokens');
    writeFileSync(file, 'writer:w-0123456789abcdef\nreader:r-0123456789abcdef\nsidecar:s-0123456789abcdef\n');
    authed = await listenApp({ tokensFile: file });
  });
  afterAll(async () => authed?.app.close());

  it('the page is public, the API behind it is not; whoami names the role; readers may not acknowledge', async () => {
    expect((await request(`${authed.url}/ui/`)).statusCode).toBe(200);
    expect((await call(authed.url, 'GET', '/v1/events')).status).toBe(401);
    expect((await call(authed.url, 'GET', '/v1/workloads')).status).toBe(401);
    expect((await call(authed.url, 'GET', '/v1/whoami')).status).toBe(401);
    expect((await call(authed.url, 'GET', '/v1/whoami', undefined, 'r-0123456789abcdef')).body).toEqual({ role: 'reader', open: false });
    expect((await call(authed.url, 'GET', '/v1/whoami', undefined, 'w-0123456789abcdef')).body).toEqual({ role: 'writer', open: false });
    const ack = { replica: 'p', revision: 1 };
    expect((await call(authed.url, 'POST', '/v1/workloads/ns/a/acks', ack, 'r-0123456789abcdef')).body.error.code).toBe('LANEWAY_ERR_FORBIDDEN');
    expect((await call(authed.url, 'POST', '/v1/workloads/ns/a/acks', ack, 's-0123456789abcdef')).body).toEqual({ known: false });
  });
});

describe('a real sidecar', () => {
  let sidecar: Started | undefined;
  afterAll(async () => {
    await sidecar?.stop();
  });

  it('names itself and acknowledges every revision it applies', async () => {
    const first = (await call(url, 'PUT', '/v1/sandboxes/real-a', { spec: spec(['ns/real']) })).body.status.revision as number;
    sidecar = await startLaneway(
      ['sidecar', '--workload', 'ns/real', '--port', `${await freePort()}:8080`, '--admin', '127.0.0.1:0', '--control-plane', url, '--log-level', 'info'],
      /"msg":"sidecar listening"/,
      {},
      45_000,
    );
    const sidecarOf = async () => (await call(url, 'GET', '/v1/workloads')).body.items.find((w: { workload: string }) => w.workload === 'ns/real')?.sidecars[0];
    await waitFor('the sidecar to acknowledge the first revision', async () => (await sidecarOf())?.acknowledged === first, 30_000);
    expect((await sidecarOf()).replica).toMatch(new RegExp(`/${sidecar.child.pid}$`));
    const second = (await call(url, 'PUT', '/v1/sandboxes/real-b', { spec: spec(['ns/real']) })).body.status.revision as number;
    await waitFor('the sidecar to acknowledge the second revision', async () => (await sidecarOf())?.acknowledged === second, 30_000);
    expect((await sidecarOf()).lag).toBe(0);
  });
});
