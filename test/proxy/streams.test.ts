// Large bodies, WebSocket tunnels and graceful drain through a real sidecar process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { startSidecar, type SidecarProcess } from '../helpers/processes.js';
import { waitFor } from '../../core/poll.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';

const MB = 1024 * 1024;
const TOTAL = 100 * MB;
const CHUNK = Buffer.alloc(64 * 1024, 7);

let app: Upstream;
let fork: Upstream;
let wss: WebSocketServer;
let sidecar: SidecarProcess;
const dir = mkdtempSync(join(tmpdir(), 'laneway-streams-'));

async function rssBytes(admin: string): Promise<number> {
  const text = await (await request(`${admin}/metrics`)).body.text();
  const m = /laneway_sidecar_process_resident_memory_bytes (\d+)/.exec(text);
  return Number(m?.[1]);
}

/** Samples the sidecar's RSS while `work` runs; returns the peak. */
async function peakRssDuring(admin: string, work: Promise<unknown>): Promise<number> {
  let peak = await rssBytes(admin);
  let done = false;
  void work.finally(() => (done = true));
  while (!done) {
    peak = Math.max(peak, await rssBytes(admin));
    await new Promise((r) => setTimeout(r, 50));
  }
  await work;
  return Math.max(peak, await rssBytes(admin));
}

beforeAll(async () => {
  app = await startUpstream('app', (req, res) => {
    if (req.url === '/upload') {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => res.end(JSON.stringify({ bytes })));
    } else if (req.url === '/download') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) });
      let sent = 0;
      const pump = (): void => {
        while (sent < TOTAL) {
          sent += CHUNK.length;
          if (!res.write(CHUNK)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    } else if (req.url?.startsWith('/slow')) {
      setTimeout(() => res.end('slow done'), 600);
    } else {
      res.end('ok');
    }
  });
  fork = await startUpstream('fork');
  wss = new WebSocketServer({ server: fork.server });
  wss.on('connection', (ws, req) => {
    ws.on('message', (data) => ws.send(`fork echo: ${data.toString()} (hops ${req.headers['laneway-hops']})`));
  });
  const routes = join(dir, 'routes.json');
  writeFileSync(routes, JSON.stringify({ workload: 'default/orders', revision: 1, routes: [{ key: 'ws1', sandbox: 'pr-ws', targets: { [String(app.port)]: `127.0.0.1:${fork.port}` } }] }));
  sidecar = await startSidecar({ appPort: app.port, extra: ['--routes-file', routes] });
});

afterAll(async () => {
  await sidecar?.stop();
  wss?.close();
  await Promise.all([app?.close(), fork?.close()]);
});

describe('100 MB bodies stream through with bounded memory', () => {
  it('upload', async () => {
    const before = await rssBytes(sidecar.admin);
    let produced = 0;
    const body = new Readable({
      read() {
        if (produced >= TOTAL) this.push(null);
        else {
          produced += CHUNK.length;
          this.push(CHUNK);
        }
      },
    });
    const work = request(`http://127.0.0.1:${sidecar.port}/upload`, { method: 'POST', body }).then((r) => r.body.json());
    const peak = await peakRssDuring(sidecar.admin, work);
    expect(await work).toEqual({ bytes: TOTAL });
    // Buffering the body whole would add ≥ 100 MB; streaming adds socket buffers plus garbage not yet collected.
    expect(peak - before).toBeLessThan(64 * MB);
  });

  it('download, with a slow reader (backpressure)', async () => {
    const before = await rssBytes(sidecar.admin);
    const work = (async () => {
      const res = await request(`http://127.0.0.1:${sidecar.port}/download`);
      let bytes = 0;
      let chunks = 0;
      for await (const chunk of res.body) {
        bytes += (chunk as Buffer).length;
        if (++chunks % 200 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      return bytes;
    })();
    const peak = await peakRssDuring(sidecar.admin, work);
    expect(await work).toBe(TOTAL);
    expect(peak - before).toBeLessThan(64 * MB);
  });
});

describe('WebSocket', () => {
  it('echo through the sidecar to a sandbox, with laneway-sandbox on the 101', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${sidecar.port}/chat`, { headers: { baggage: 'laneway=ws1' } });
    const upgraded = once(ws, 'upgrade');
    const opened = once(ws, 'open');
    const [upgrade] = (await upgraded) as [{ headers: Record<string, string> }];
    expect(upgrade.headers['laneway-sandbox']).toBe('pr-ws');
    await opened;
    ws.send('hello');
    const [msg] = await once(ws, 'message');
    expect(String(msg)).toBe('fork echo: hello (hops 1)');
    ws.send('again');
    expect(String((await once(ws, 'message'))[0])).toBe('fork echo: again (hops 1)');
    ws.close();
    await once(ws, 'close');
  });

  it('without a key the upgrade goes to the baseline app', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${sidecar.port}/chat`);
    ws.on('error', () => {});
    // The baseline app has no WebSocket server: its plain HTTP answer comes back, not the fork's 101.
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number; headers: Record<string, string> }];
    expect(res.statusCode).toBe(200);
    expect(res.headers['laneway-sandbox']).toBeUndefined();
    ws.terminate();
  });
});

describe('SIGTERM', () => {
  it('drains in-flight requests, then exits 0', async () => {
    const routes = join(dir, 'drain.json');
    writeFileSync(routes, JSON.stringify({ workload: 'default/orders', revision: 1, routes: [] }));
    const sc = await startSidecar({ appPort: app.port, extra: ['--routes-file', routes] });
    const before = app.seen.filter((r) => r.url.startsWith('/slow/')).length;
    const inflight = Array.from({ length: 10 }, (_, i) =>
      request(`http://127.0.0.1:${sc.port}/slow/${i}`).then(async (r) => ({ status: r.statusCode, text: await r.body.text() })),
    );
    // In flight means the app has them (each answers 600 ms later): a fixed sleep raced a loaded machine, and a
    // connection whose request had not arrived yet is idle to the drain, which may close it.
    await waitFor('the app to have the ten requests', () => app.seen.filter((r) => r.url.startsWith('/slow/')).length - before === 10, 10_000, 5);
    const exit = sc.stop('SIGTERM');
    const results = await Promise.all(inflight);
    expect(results.every((r) => r.status === 200 && r.text === 'slow done')).toBe(true);
    expect(await exit).toBe(0);
    await expect(request(`http://127.0.0.1:${sc.port}/`)).rejects.toThrow();
  });
});
