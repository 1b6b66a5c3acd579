// Traffic capture through real processes: a control plane with tokens, a sidecar reporting through a TCP tap that records
// (and can stall) what leaves the pod, and real upstreams for the baseline and two sandboxes' forks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import http2 from 'node:http2';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { startSidecar, runLaneway, type SidecarProcess } from '../helpers/processes.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';
import { call, removeTempDirs, SseClient, startControlPlane, tempDir, type ControlPlaneProcess } from '../control-plane/helpers.js';
import { waitFor } from '../../core/poll.js';
import { TrafficStore, TRAFFIC_RING_ENTRIES } from '../../control-plane/traffic.js';
import { REPORT_CONTENT_TYPE, REPORT_MAX_LINE_CHARS, reportBody, type CapturedExchange, type ReportedExchange, type TrafficEntry } from '../../model/capture.js';
import { REPORT_BATCH_MAX_ITEMS, REPORT_FLUSH_MS, REPORT_QUEUE_MAX_ITEMS, REPORT_TIMEOUT_MS } from '../../proxy/reporter.js';

const WRITER = 'writer-token-0123456789abcdef';
const SIDECAR = 'sidecar-token-0123456789abcdef';
const READER = 'reader-token-0123456789abcdef';
const SECRET_AUTH = 'Bearer very-secret-credential-7f3a';
const SECRET_COOKIE = 'session=cookie-secret-91b2';

/** A TCP relay between the sidecar and the control plane: keeps every byte the sidecar sends, and can hold them back. */
class WireTap {
  readonly server: Server;
  readonly sent: Buffer[] = [];
  port = 0;
  #paused = false;
  readonly #held: (() => void)[] = [];

  constructor(target: number) {
    this.server = createServer((client: Socket) => {
      const upstream = connect(target, '127.0.0.1');
      client.on('data', (chunk: Buffer) => {
        this.sent.push(chunk);
        if (this.#paused) this.#held.push(() => upstream.write(chunk));
        else upstream.write(chunk);
      });
      upstream.pipe(client);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
  }

  async listen(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Nothing the sidecar sends reaches the control plane until resume(): its report POSTs hang. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    for (const write of this.#held.splice(0)) write();
  }

  text(): string {
    return Buffer.concat(this.sent).toString('latin1');
  }
}

let cp: ControlPlaneProcess;
let tap: WireTap;
let sidecar: SidecarProcess;
let baseline: Upstream;
let forkA: Upstream;
let forkB: Upstream;
let plain: Upstream;

async function get(path: string, key: string | undefined, headers: Record<string, string> = {}, body?: string | Buffer): Promise<{ status: number; body: string }> {
  const res = await request(`http://127.0.0.1:${sidecar.port}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...headers, ...(key === undefined ? {} : { baggage: `laneway=${key}` }) },
    body: body ?? null,
  });
  return { status: res.statusCode, body: await res.body.text() };
}

async function traffic(name: string, query = ''): Promise<{ capture: boolean; entries: TrafficEntry[]; lastSeq: number }> {
  const res = await call(cp.url, 'GET', `/v1/sandboxes/${name}/traffic${query}`, undefined, READER);
  expect(res.status).toBe(200);
  return res.body;
}

function exchanges(entries: readonly TrafficEntry[]): CapturedExchange[] {
  return entries.flatMap((e) => (e.kind === 'exchange' ? [e.exchange] : []));
}

async function metric(name: string): Promise<number> {
  const text = await (await request(`${sidecar.admin}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

beforeAll(async () => {
  const dir = tempDir('laneway-capture-');
  const tokens = join(dir, 'tokens');
  writeFileSync(tokens, `writer:${WRITER}\nsidecar:${SIDECAR}\nreader:${READER}\n`);
  cp = await startControlPlane(join(dir, 'data'), ['--tokens-file', tokens, '--probe-interval', '0']);
  tap = new WireTap(Number(new URL(cp.url).port));
  await tap.listen();
  [baseline, forkA, forkB, plain] = await Promise.all([startUpstream('baseline'), startUpstream('fork-a'), startUpstream('fork-b'), startUpstream('plain')]);
  const fork = (port: number): Record<string, unknown> => ({ workload: 'default/orders', targets: { [String(baseline.port)]: `127.0.0.1:${port}` } });
  for (const [name, key, port, capture] of [
    ['cap-a', 'capturekeyaaaa', forkA.port, { bodyBytes: 8, redactHeaders: ['x-api-key'] }],
    ['cap-b', 'capturekeybbbb', forkB.port, {}],
    ['no-capture', 'capturekeyplain', plain.port, undefined],
  ] as const) {
    const res = await call(cp.url, 'PUT', `/v1/sandboxes/${name}`, { spec: { routingKey: key, forks: [fork(port)], ...(capture === undefined ? {} : { capture }) } }, WRITER);
    expect(res.status).toBe(201);
  }
  sidecar = await startSidecar({ appPort: baseline.port, extra: ['--control-plane', `http://127.0.0.1:${tap.port}`], env: { LANEWAY_TOKEN: SIDECAR } });
  await waitFor('the routes at the sidecar', async () => (await get('/', 'capturekeyplain')).body.includes('plain'), 10_000);
}, 90_000);

afterAll(async () => {
  await sidecar?.stop();
  await cp?.stop();
  tap?.server.close();
  await Promise.all([baseline, forkA, forkB, plain].map((u) => u?.close()));
  removeTempDirs();
});

describe('traffic capture', () => {
  it('records what the sidecar routes to a capturing sandbox: method, path, status, headers, first bytes of bodies', async () => {
    const res = await get('/orders/42?full=1', 'capturekeyaaaa', { 'x-request': 'one' }, 'a request body longer than eight bytes');
    expect(res.status).toBe(200);
    await waitFor('the exchange at the control plane', async () => exchanges((await traffic('cap-a')).entries).some((e) => e.path === '/orders/42?full=1'), 5000);
    const e = exchanges((await traffic('cap-a')).entries).find((x) => x.path === '/orders/42?full=1')!;
    expect(e).toMatchObject({ sandbox: 'cap-a', workload: 'default/orders', method: 'POST', status: 200, protocol: 'http1', target: `127.0.0.1:${forkA.port}` });
    expect(e.requestHeaders['x-request']).toBe('one');
    expect(e.requestHeaders['laneway-fork']).toBe(`capturekeyaaaa@default/orders:${baseline.port}`);
    expect(e.responseHeaders['x-served-by']).toBe('fork-a');
    expect(e.requestBody).toEqual({ encoding: 'utf8', data: 'a reques', truncated: true });
    expect(e.responseBody).toMatchObject({ encoding: 'utf8', truncated: true });
    expect(e.durationMs).toBeGreaterThan(0);
  });

  it('redacts credentials in the sidecar: the secret values never appear on the wire to the control plane', async () => {
    const before = tap.sent.length;
    await get('/secret', 'capturekeyaaaa', { authorization: SECRET_AUTH, cookie: SECRET_COOKIE, 'x-api-key': 'api-key-secret-55' });
    await waitFor('the exchange at the control plane', async () => exchanges((await traffic('cap-a')).entries).some((e) => e.path === '/secret'), 5000);
    const wire = Buffer.concat(tap.sent.slice(before)).toString('latin1');
    expect(wire).toContain('POST /v1/reports');
    expect(wire).toContain('"/secret"');
    for (const secret of [SECRET_AUTH, 'very-secret-credential', 'cookie-secret-91b2', 'api-key-secret-55']) expect(wire).not.toContain(secret);
    const e = exchanges((await traffic('cap-a')).entries).find((x) => x.path === '/secret')!;
    expect(e.requestHeaders).toMatchObject({ authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]' });
    // The fork itself got the real values: redaction is for the record, not the request.
    expect(forkA.seen.find((s) => s.url === '/secret')!.headers.authorization).toBe(SECRET_AUTH);
  });

  it('keeps two sandboxes on one workload apart, and records nothing for a sandbox without capture', async () => {
    await Promise.all(Array.from({ length: 30 }, (_, i) => get(`/mix/${i}`, i % 3 === 0 ? 'capturekeyaaaa' : i % 3 === 1 ? 'capturekeybbbb' : 'capturekeyplain')));
    await get('/mix/baseline', undefined);
    await waitFor('both sandboxes reported', async () => {
      const [a, b] = await Promise.all([traffic('cap-a'), traffic('cap-b')]);
      return exchanges(a.entries).filter((e) => e.path.startsWith('/mix/')).length === 10 && exchanges(b.entries).filter((e) => e.path.startsWith('/mix/')).length === 10;
    }, 5000);
    const a = exchanges((await traffic('cap-a')).entries).filter((e) => e.path.startsWith('/mix/'));
    const b = exchanges((await traffic('cap-b')).entries).filter((e) => e.path.startsWith('/mix/'));
    expect(a.every((e) => e.sandbox === 'cap-a' && Number(e.path.split('/')[2]) % 3 === 0 && e.responseHeaders['x-served-by'] === 'fork-a')).toBe(true);
    expect(b.every((e) => e.sandbox === 'cap-b' && Number(e.path.split('/')[2]) % 3 === 1 && e.responseHeaders['x-served-by'] === 'fork-b')).toBe(true);
    const none = await traffic('no-capture');
    expect(none).toMatchObject({ capture: false, entries: [] });
    // The baseline request belongs to no lane.
    expect([...a, ...b].some((e) => e.path === '/mix/baseline')).toBe(false);
  });

  it('filters by status class and workload, and pages with after', async () => {
    const all = await traffic('cap-b');
    expect(all.entries.length).toBeGreaterThan(5);
    const page = await traffic('cap-b', `?limit=3&after=${all.entries[0]!.seq}`);
    expect(page.entries.map((e) => e.seq)).toEqual(all.entries.slice(-3).map((e) => e.seq));
    expect(exchanges((await traffic('cap-b', '?status=2xx')).entries).length).toBe(exchanges(all.entries).length);
    expect((await traffic('cap-b', '?status=5xx')).entries).toEqual([]);
    expect((await traffic('cap-b', '?workload=default/payments')).entries).toEqual([]);
    expect((await call(cp.url, 'GET', '/v1/sandboxes/cap-b/traffic?status=6xx', undefined, READER)).status).toBe(400);
    expect((await call(cp.url, 'GET', '/v1/sandboxes/nope/traffic', undefined, READER)).status).toBe(404);
  });

  it('follows over SSE and resumes after the last entry seen (Last-Event-ID)', async () => {
    const first = await SseClient.connect(cp.url, '/v1/sandboxes/cap-b/traffic/stream', { token: READER });
    await get('/follow/1', 'capturekeybbbb');
    await first.until((c) => c.events.some((e) => e.event === 'exchange' && e.data.exchange.path === '/follow/1'), 5000, '/follow/1');
    const seen = first.events.find((e) => e.event === 'exchange' && e.data.exchange.path === '/follow/1')!;
    first.close();
    await get('/follow/2', 'capturekeybbbb');
    await waitFor('the second exchange stored', async () => exchanges((await traffic('cap-b')).entries).some((e) => e.path === '/follow/2'), 5000);
    const resumed = await SseClient.connect(cp.url, '/v1/sandboxes/cap-b/traffic/stream', { token: READER, lastEventId: seen.id! });
    await resumed.until((c) => c.events.some((e) => e.event === 'exchange' && e.data.exchange.path === '/follow/2'), 5000, '/follow/2');
    expect(resumed.events.filter((e) => e.event === 'exchange').map((e) => e.data.exchange.path)).toEqual(['/follow/2']);
    resumed.close();
  });

  it('laneway traffic prints one line per exchange, and JSON lines with -o json', async () => {
    const env = { LANEWAY_TOKEN: READER };
    const lines = await runLaneway(['traffic', 'cap-b', '--server', cp.url, '--status', '2xx'], env);
    expect(lines.code).toBe(0);
    expect(lines.stdout).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  default/orders  GET /follow/2  200  [0-9.]+ ms  -> 127\\.0\\.0\\.1:${forkB.port}$`, 'm'));
    const json = await runLaneway(['traffic', 'cap-b', '--server', cp.url, '-o', 'json', '--limit', '2'], env);
    const entries = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as TrafficEntry);
    expect(entries.length).toBe(2);
    expect(entries[1]!.kind).toBe('exchange');
    const bad = await runLaneway(['traffic', 'cap-b', '--server', cp.url, '--status', 'teapot'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--status/);
  });

  /** POSTs a report body as the sidecars send it (NDJSON). */
  async function postReport(body: string, token?: string, contentType = REPORT_CONTENT_TYPE): Promise<{ status: number; body: any }> {
    const res = await request(`${cp.url}/v1/reports`, { method: 'POST', headers: { 'content-type': contentType, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }, body });
    const text = await res.body.text();
    return { status: res.statusCode, body: text === '' ? undefined : JSON.parse(text) };
  }
  const reported = (sandbox: string, workload: string, path: string, extra: Record<string, unknown> = {}): string =>
    JSON.stringify({ sandbox, at: Date.now(), workload, protocol: 'http1', method: 'GET', path, status: 200, durationMs: 1, target: '127.0.0.1:9', requestHeaders: ['x-a', '1'], responseHeaders: [], ...extra });

  it('only sidecar and writer tokens may report; a report cannot write into a sandbox that does not fork its workload', async () => {
    const report = reportBody({ workload: 'default/payments', sightings: [], dropped: {} }, [reported('cap-a', 'default/payments', '/forged')]);
    expect((await postReport(report, READER)).status).toBe(403);
    expect((await postReport(report)).status).toBe(401);
    const accepted = await postReport(report, SIDECAR);
    expect(accepted.status).toBe(202);
    expect(accepted.body).toEqual({ accepted: 0, ignored: 1 });
    expect(exchanges((await traffic('cap-a')).entries).some((e) => e.path === '/forged')).toBe(false);
    const badHead = await postReport('{"workload": "default/orders", "sightings": "nope", "dropped": {}}', SIDECAR);
    expect(badHead).toMatchObject({ status: 400, body: { error: { code: 'LANEWAY_ERR_INVALID_FIELD', field: 'head.sightings' } } });
    expect(await postReport('not json\n{}', SIDECAR)).toMatchObject({ status: 400, body: { error: { code: 'LANEWAY_ERR_INVALID_BODY' } } });
    expect((await postReport(JSON.stringify({ workload: 'default/orders', exchanges: [], sightings: [], dropped: {} }), SIDECAR, 'application/json')).status).toBe(415);
  });

  it('hostile report lines: malformed ones are ignored, invalid ones read as invalid-record markers, the rest are kept', async () => {
    const head = { workload: 'default/orders', sightings: [], dropped: {} };
    const lines = [
      reported('cap-b', 'default/orders', '/hostile/ok'),
      '{"path": "/no-sandbox-first"}',
      `{"sandbox":"${'x'.repeat(70)}"}`,
      `{"sandbox":"cap-b", "broken": `,
      reported('cap-b', 'default/orders', '/hostile/other-workload').replace('"default/orders"', '"default/payments"'),
      reported('cap-b', 'default/orders', '/hostile/bad-status', { status: 'teapot' }),
      reported('cap-b', 'default/orders', '/hostile/not-strings', { responseHeaders: ['x-n', 1] }),
      // JSON.parse keeps the last of two keys: the line must not land in cap-a's ring through cap-b's.
      reported('cap-b', 'default/orders', '/hostile/dup', { sandbox: 'cap-a' }).replace('{"sandbox":"cap-a"', '{"sandbox":"cap-b","x":1,"sandbox":"cap-a"'),
      reported('cap-b', 'default/orders', '/hostile/extra', { injected: { deep: true }, requestBody: { encoding: 'utf8', data: 'hi', truncated: false, more: 1 } }),
      `{"sandbox":"cap-b"${' '.repeat(REPORT_MAX_LINE_CHARS)}}`,
    ];
    const before = (await traffic('cap-b')).lastSeq;
    const answer = await postReport(reportBody(head, lines), SIDECAR);
    expect(answer).toEqual({ status: 202, body: { accepted: 7, ignored: 3 } });
    const page = await traffic('cap-b', `?after=${before}&limit=100`);
    const kept = exchanges(page.entries);
    expect(kept.map((e) => e.path)).toEqual(['/hostile/ok', '/hostile/extra']);
    expect(kept[0]!.requestHeaders).toEqual({ 'x-a': '1' });
    // Known fields only: what a sidecar adds beyond them is not kept.
    expect(kept[1]).not.toHaveProperty('injected');
    expect(kept[1]!.requestBody).toEqual({ encoding: 'utf8', data: 'hi', truncated: false });
    const invalid = page.entries.filter((e) => e.kind === 'dropped' && e.reason === 'invalid-record');
    expect(invalid.length).toBe(5);
    expect(exchanges((await traffic('cap-a')).entries).some((e) => e.path.startsWith('/hostile'))).toBe(false);
    const printed = await runLaneway(['traffic', 'cap-b', '--server', cp.url, '--limit', '20'], { LANEWAY_TOKEN: READER });
    expect(printed.stdout).toMatch(/1 record\(s\) invalid: the sidecar sent something that is not an exchange/);
  });

  it('a steady stream goes out in few batches (a full one, or one per flush interval), not one per round trip', async () => {
    const batchesBefore = await metric('laneway_capture_batches_total');
    const queuedBefore = await metric('laneway_capture_records_total');
    const started = Date.now();
    const pool = new Pool(`http://127.0.0.1:${sidecar.port}`, { connections: 8 });
    try {
      for (let sent = 0; sent < 1200; ) {
        await Promise.all(Array.from({ length: 8 }, async () => {
          const res = await pool.request({ path: `/steady/${sent++}`, method: 'GET', headers: { baggage: 'laneway=capturekeybbbb' } });
          await res.body.text();
          expect(res.statusCode).toBe(200);
        }));
      }
    } finally {
      await pool.close();
    }
    const records = (await metric('laneway_capture_records_total')) - queuedBefore;
    expect(records).toBe(1200);
    await waitFor('the steady stream reported', async () => exchanges((await traffic('cap-b', '?limit=1')).entries).some((e) => e.path === '/steady/1199'), 5000);
    const elapsed = Date.now() - started;
    const batches = (await metric('laneway_capture_batches_total')) - batchesBefore;
    expect(batches).toBeLessThanOrEqual(Math.ceil(elapsed / REPORT_FLUSH_MS) + Math.ceil(records / REPORT_BATCH_MAX_ITEMS) + 2);
  });

  it('a flood while the control plane does not answer: records are dropped and counted, never requests; a marker follows', async () => {
    const droppedBefore = await metric('laneway_capture_dropped_total');
    const queuedBefore = await metric('laneway_capture_records_total');
    tap.pause();
    let dropped = 0;
    try {
      const floodStarted = Date.now();
      const pool = new Pool(`http://127.0.0.1:${sidecar.port}`, { connections: 64 });
      let ok = 0;
      let failed = 0;
      try {
        const burst = async (n: number): Promise<void> => {
          await Promise.all(
            Array.from({ length: n }, async (_, i) => {
              const res = await pool.request({ method: 'GET', path: `/flood/${i}`, headers: { baggage: 'laneway=capturekeybbbb' } });
              const text = await res.body.text();
              if (res.statusCode === 200 && text.includes('fork-b')) ok++;
              else failed++;
            }),
          );
        };
        for (let round = 0; round < 10; round++) await burst(1000);
      } finally {
        await pool.close();
      }
      const floodMs = Date.now() - floodStarted;
      expect({ ok, failed }).toEqual({ ok: 10_000, failed: 0 });
      dropped = (await metric('laneway_capture_dropped_total')) - droppedBefore;
      const queued = (await metric('laneway_capture_records_total')) - queuedBefore;
      // Every exchange was queued or dropped. The queue holds REPORT_QUEUE_MAX_ITEMS; a stalled batch leaves it
      // only when its POST times out (REPORT_TIMEOUT_MS), so at most one batch per timeout made room for more.
      expect(queued + dropped).toBe(10_000);
      const batches = 1 + Math.ceil(floodMs / REPORT_TIMEOUT_MS);
      expect(queued).toBeLessThanOrEqual(REPORT_QUEUE_MAX_ITEMS + batches * REPORT_BATCH_MAX_ITEMS);
      expect(await metric('laneway_requests_total{decision="error",protocol="http1"}')).toBe(0);
    } finally {
      // Followed from before the reports resume: later exchanges may push markers out of the ring, not out of the stream.
      const follow = await SseClient.connect(cp.url, '/v1/sandboxes/cap-b/traffic/stream', { token: READER });
      tap.resume();
      try {
        // The next reports carry the drop counts (lost batches' records too): markers for at least every dropped record.
        const marked = (c: SseClient): number => c.events.reduce((n, e) => n + (e.event === 'dropped' ? (e.data as { count: number }).count : 0), 0);
        await follow.until((c) => marked(c) >= dropped, 20_000, `drop markers for ${dropped} records`);
      } finally {
        follow.close();
      }
    }
  }, 90_000);
});

describe('HTTP/2 capture', () => {
  it('records an h2c (gRPC-shaped) exchange: headers, status and the trailers, credentials redacted', async () => {
    const fork = http2.createServer();
    fork.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end('ok');
    });
    await new Promise<void>((resolve) => fork.listen(0, '127.0.0.1', resolve));
    try {
      const port = (fork.address() as { port: number }).port;
      const put = await call(cp.url, 'PUT', '/v1/sandboxes/cap-h2', { spec: { routingKey: 'capturekeyh2h2', capture: {}, forks: [{ workload: 'default/orders', targets: { [String(baseline.port)]: `127.0.0.1:${port}` } }] } }, WRITER);
      expect(put.status).toBe(201);
      const session = http2.connect(`http://127.0.0.1:${sidecar.port}`);
      try {
        const send = (): Promise<number> =>
          new Promise((resolve, reject) => {
            const req = session.request({ ':method': 'POST', ':path': '/pkg.Svc/Call', 'content-type': 'application/grpc', baggage: 'laneway=capturekeyh2h2', authorization: SECRET_AUTH });
            let status = 0;
            req.on('response', (h) => (status = Number(h[':status'])));
            req.on('error', reject);
            req.on('close', () => resolve(status));
            req.resume();
            req.end();
          });
        await waitFor('the h2 route', async () => (await send()) === 200 && exchanges((await traffic('cap-h2')).entries).length > 0, 10_000);
      } finally {
        session.close();
      }
      const e = exchanges((await traffic('cap-h2')).entries)[0]!;
      expect(e).toMatchObject({ protocol: 'h2', method: 'POST', path: '/pkg.Svc/Call', status: 200, target: `127.0.0.1:${port}` });
      expect(e.requestHeaders.authorization).toBe('[redacted]');
      expect(e.responseHeaders['grpc-status']).toBe('0');
      expect(e.responseHeaders['laneway-sandbox']).toBe('cap-h2');
    } finally {
      fork.close();
    }
  });
});

describe('the traffic plan action', () => {
  const plan = (count: number): string => `name: payments-called
version: "1.0.0"
description: the fork answers, and was called exactly as often as expected
steps:
  - id: call
    http: {url: "http://127.0.0.1:${sidecar.port}/plan/charge", method: POST, body: {amount: 5}}
    assert: [{status: 200}]
  - id: called
    traffic: {workload: default/orders, method: POST, path: "/plan/*", count: ${count}, status: 200, timeout: 5s}
  - id: never
    traffic: {workload: default/orders, path: /plan/refund, count: 0, timeout: 1s}
`;

  it('passes when the fork was called exactly once with status 200, and fails naming expected and actual otherwise', async () => {
    const dir = tempDir('laneway-traffic-plan-');
    const env = { LANEWAY_TOKEN: WRITER };
    writeFileSync(join(dir, 'ok.yaml'), plan(1));
    const ok = await runLaneway(['plan', 'run', join(dir, 'ok.yaml'), '--sandbox', 'cap-b', '--server', cp.url, '-o', 'json'], env);
    expect(ok.stderr).toBe('');
    const result = JSON.parse(ok.stdout);
    expect(result.verdict).toBe('pass');
    expect(result.steps[1].outputs).toMatchObject({ count: 1, statuses: [200] });
    expect(result.steps[1].assertions.map((a: { assertion: string }) => a.assertion)).toEqual(['traffic count == 1', 'traffic status == 200']);
    // A second run sees only its own exchange (the ring still holds the first run's): it passes again.
    writeFileSync(join(dir, 'two.yaml'), plan(2));
    const two = await runLaneway(['plan', 'run', join(dir, 'two.yaml'), '--sandbox', 'cap-b', '--server', cp.url, '-o', 'json'], env);
    expect(two.code).toBe(1);
    const failed = JSON.parse(two.stdout);
    expect(failed.steps[1]).toMatchObject({ verdict: 'fail', assertions: [{ assertion: 'traffic count == 2', pass: false, expected: 2, actual: 1 }, { pass: true }] });
    // Records a sidecar could not deliver in the window: the failure says the count may be short.
    writeFileSync(join(dir, 'missed.yaml'), `name: missed
version: "1.0.0"
description: a sidecar reports dropped records during the run
steps:
  - id: drop
    http:
      url: "${cp.url}/v1/reports"
      method: POST
      headers: {content-type: application/x-ndjson, authorization: "Bearer ${SIDECAR}"}
      body: '{"workload":"default/orders","sightings":[],"dropped":{"cap-b":3}}'
    assert: [{status: 202}]
  - id: called
    traffic: {workload: default/orders, path: /plan/never-sent, count: 1, timeout: 1s}
`);
    const missed = JSON.parse((await runLaneway(['plan', 'run', join(dir, 'missed.yaml'), '--sandbox', 'cap-b', '--server', cp.url, '-o', 'json'], env)).stdout);
    expect(missed.steps[1].outputs).toMatchObject({ count: 0, missed: 3 });
    expect(missed.steps[1].assertions[0].message).toMatch(/3 exchange\(s\) of default\/orders in this window were not captured/);
    // Without capture the step says why.
    const none = await runLaneway(['plan', 'run', join(dir, 'ok.yaml'), '--sandbox', 'no-capture', '--server', cp.url, '-o', 'json'], env);
    expect(JSON.parse(none.stdout).steps[1].error.code).toBe('LANEWAY_ERR_CAPTURE_OFF');
  }, 60_000);
});

describe('the traffic ring', () => {
  const exchange = (i: number, bodyBytes = 0): string =>
    JSON.stringify({
      sandbox: 's', at: Date.now(), workload: 'default/orders', protocol: 'http1', method: 'GET', path: `/${i}`, status: 200, durationMs: 1, target: 'x:1',
      requestHeaders: [], responseHeaders: [], ...(bodyBytes > 0 ? { responseBody: { encoding: 'utf8', data: 'x'.repeat(bodyBytes), truncated: false } } : {}),
    } satisfies ReportedExchange);

  it('keeps the newest entries by count and by bytes, oldest out first, sequence numbers unbroken', () => {
    const store = new TrafficStore();
    try {
      for (let i = 0; i < TRAFFIC_RING_ENTRIES + 1500; i += 10) store.addExchanges('s#1', 's', 'default/orders', Array.from({ length: 10 }, (_, j) => exchange(i + j)), i % 20 === 0);
      const page = store.list('s#1', { limit: 1000 });
      expect(page.entries.length).toBe(TRAFFIC_RING_ENTRIES);
      expect(page.oldestSeq).toBe(1501);
      expect(page.lastSeq).toBe(TRAFFIC_RING_ENTRIES + 1500);
      expect(page.entries.map((e) => (e.kind === 'exchange' ? e.exchange.path : '')).slice(0, 2)).toEqual(['/1500', '/1501']);
      // 64 KiB bodies: the byte cap (8 MiB) holds fewer than the count cap.
      for (let i = 0; i < 200; i++) store.addExchanges('big#1', 's', 'default/orders', [exchange(i, 64 * 1024)], false);
      const big = store.list('big#1', { limit: 1000 });
      expect(big.entries.length).toBeLessThan(130);
      expect(big.entries.at(-1)!.seq).toBe(200);
      expect(big.entries.every((e) => e.kind === 'exchange')).toBe(true);
    } finally {
      store.close();
    }
  });
});
