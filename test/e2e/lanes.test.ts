// Local lanes through real processes: a control plane with a lane relay, a sidecar watching it, and `laneway connect`
// forking the workload to "laptop" servers on this machine through one outbound tunnel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import * as grpc from '@grpc/grpc-js';
import { EchoClient, startGrpcServer, type EchoStub, type Msg } from '../helpers/grpc.js';
import { CLI, freePort, startSidecar, waitForOutput, type SidecarProcess } from '../helpers/processes.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';
import { call, removeTempDirs, startControlPlane, tempDir, type ControlPlaneProcess } from '../control-plane/helpers.js';
import { waitFor } from '../../core/poll.js';
import { dialLane, LaneRefusedError } from '../../proxy/lane-dial.js';
import { parseTarget, type Target } from '../../model/route-table.js';
import { LANE_MAX_STREAMS } from '../../model/lanes.js';

let cp: ControlPlaneProcess;
let sidecar: SidecarProcess;
let h2Port: number;
let baseline: Upstream;
let baselineH2: http2.Http2Server;
let laptop: Server;
let laptopH2: http2.Http2Server;
let laptopPort: number;
let laptopH2Port: number;
const laptopSeen: string[] = [];
const laptopH2Streams: { path: string; closed: boolean; aborted: boolean }[] = [];
let connectProc: ChildProcess;
let payments: Upstream;
let paymentsFork: Upstream;
let paymentsSidecar: SidecarProcess;
let exposePort: number;
let forbiddenPort: number;
/** An app port the lane maps to a local port nothing listens on. */
const DEAD_APP_PORT = 9;
let deadLocalPort: number;
let key: string;
const stateHome = tempDir('laneway-lane-state-');
const cpData = tempDir();

interface Connected {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly key: string;
}

async function startConnect(env: NodeJS.ProcessEnv = {}, extra: string[] = []): Promise<Connected> {
  const child = spawn(
    process.execPath,
    [
      CLI, 'connect', '--server', cp.url, '--sandbox', 'pr-7', '--workload', 'default/orders',
      '--port', `${baseline.port}=127.0.0.1:${laptopPort}`, '--port', `${h2AppPort()}=127.0.0.1:${laptopH2Port}`,
      '--port', `${DEAD_APP_PORT}=127.0.0.1:${deadLocalPort}`, // a local service that is not running
      '--expose', `127.0.0.1:${paymentsSidecar.port}=${exposePort}`, // Refused by the target guard like a metadata address, but on loopback: no test ever sends traffic off this machine.
      '--expose', `${new URL(cp.url).host}=${forbiddenPort}`,
      ...extra,
    ],
    { env: { ...process.env, XDG_STATE_HOME: stateHome, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output = await waitForOutput(child, /routing key: (\S+)/, 'laneway connect', 30_000);
  return { child, output, key: /routing key: (\S+)/.exec(output())![1]! };
}

function h2AppPort(): number {
  return (baselineH2.address() as { port: number }).port;
}

/** The relay's sidecar-facing address, as the control plane prints it. */
function relayTarget(): Target {
  return parseTarget(`lane://${/local lanes via (\S+?)\)/.exec(cp.output())![1]!}`)!;
}

/** Opens a lane tunnel as a sidecar does (proxy/lane-dial.ts): the socket, or the error. */
function dial(relay: Target, fork: string): Promise<Socket | Error> {
  return new Promise((resolve) => dialLane(relay, fork, 5000, (err, socket) => resolve(err ?? socket!)));
}

async function get(path: string, withKey: boolean): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const res = await request(`http://127.0.0.1:${sidecar.port}${path}`, { headers: withKey ? { baggage: `laneway=${key}` } : {} });
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

beforeAll(async () => {
  baseline = await startUpstream('baseline');
  baselineH2 = http2.createServer();
  baselineH2.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'x-served-by': 'baseline-h2' });
    stream.end('baseline');
  });
  await new Promise<void>((resolve) => baselineH2.listen(0, '127.0.0.1', resolve));

  laptop = createServer((req, res) => {
    laptopSeen.push(String(req.headers.baggage ?? 'none'));
    if (req.url === '/upload') {
      let bytes = 0;
      req.on('data', (d: Buffer) => (bytes += d.length));
      req.on('end', () => res.end(JSON.stringify({ name: 'laptop', bytes })));
      return;
    }
    if (req.url === '/call-payments') {
      // The local service calls payments through the exposure, passing the routing key on in baggage.
      const headers = req.headers.baggage === undefined ? {} : { baggage: req.headers.baggage };
      request(`http://127.0.0.1:${exposePort}/pay`, { headers })
        .then(async (r) => res.end(await r.body.text()))
        .catch((err: Error) => res.end(JSON.stringify({ error: err.message })));
      return;
    }
    if (req.url === '/download') {
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      let left = 20;
      const pump = (): void => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.writeHead(200, { 'content-length': String(20 * chunk.length) });
      return pump();
    }
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ name: 'laptop', fork: req.headers['laneway-fork'] })));
  });
  laptop.on('upgrade', (_req: IncomingMessage, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo '), d])));
    socket.on('error', () => {});
  });
  laptop.listen(0, '127.0.0.1');
  await once(laptop, 'listening');
  laptopPort = (laptop.address() as { port: number }).port;

  laptopH2 = http2.createServer();
  laptopH2.on('stream', (stream, headers) => {
    const entry = { path: String(headers[':path']), closed: false, aborted: false };
    laptopH2Streams.push(entry);
    stream.on('close', () => {
      entry.closed = true;
      entry.aborted = stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR;
    });
    stream.on('error', () => {});
    if (entry.path === '/hang') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      return; // never ends: the client cancels
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-served-by': 'laptop-h2' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'from-laptop' }));
    stream.end('laptop');
  });
  await new Promise<void>((resolve) => laptopH2.listen(0, '127.0.0.1', resolve));
  laptopH2Port = (laptopH2.address() as { port: number }).port;

  cp = await startControlPlane(cpData, ['--lane-listen', '127.0.0.1:0', '--probe-interval', '0']);
  sidecar = await startSidecar({ appPort: baseline.port, extra: ['--control-plane', cp.url, '--port', `0:${h2AppPort()}`] });
  payments = await startUpstream('payments');
  paymentsFork = await startUpstream('payments-fork');
  paymentsSidecar = await startSidecar({ appPort: payments.port, workload: 'default/payments', extra: ['--control-plane', cp.url] });
  [exposePort, forbiddenPort, deadLocalPort] = [await freePort(), await freePort(), await freePort()];
  // The sandbox also forks payments in the cluster; laneway connect adds the local orders fork and keeps it.
  const created = await call(cp.url, 'PUT', '/v1/sandboxes/pr-7', { spec: { forks: [{ workload: 'default/payments', targets: { [String(payments.port)]: `127.0.0.1:${paymentsFork.port}` } }] } });
  expect(created.status).toBe(201);
  const ports = [...sidecar.output().matchAll(/127\.0\.0\.1:(\d+)->/g)].map((m) => Number(m[1]));
  h2Port = ports[1]!;
  const connected = await startConnect();
  connectProc = connected.child;
  key = connected.key;
  await waitFor('the lane route at the sidecar', async () => (await get('/', true)).headers['laneway-sandbox'] === 'pr-7', 10_000);
}, 90_000);

afterAll(async () => {
  connectProc?.kill('SIGKILL');
  await sidecar?.stop();
  await paymentsSidecar?.stop();
  await cp?.stop();
  await payments?.close();
  await paymentsFork?.close();
  laptop?.close();
  laptopH2?.close();
  baselineH2?.close();
  await baseline?.close();
  removeTempDirs();
});

describe('laneway connect', () => {
  it('sends keyed requests to the laptop and everything else to the baseline; 1,000 concurrent mixed, 0 misroutes', async () => {
    const keyed = await get('/hello', true);
    expect(keyed.status).toBe(200);
    expect(JSON.parse(keyed.body)).toEqual({ name: 'laptop', fork: `${key}@default/orders:${baseline.port}` });
    const plain = await get('/hello', false);
    expect(JSON.parse(plain.body).name).toBe('baseline');

    const pool = new Pool(`http://127.0.0.1:${sidecar.port}`, { connections: 32 });
    const seenBefore = laptopSeen.length;
    const results = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const withKey = i % 2 === 0;
        const res = await pool.request({ method: 'GET', path: `/mix/${i}`, headers: withKey ? { baggage: `laneway=${key}` } : {} });
        const body = JSON.parse(await res.body.text()) as { name: string };
        return { withKey, status: res.statusCode, name: body.name };
      }),
    );
    await pool.close();
    const misrouted = results.filter((r) => r.status !== 200 || r.name !== (r.withKey ? 'laptop' : 'baseline'));
    expect(misrouted).toEqual([]);
    // The laptop never saw a request without the key.
    expect(laptopSeen.slice(seenBefore).filter((b) => b !== `laneway=${key}`)).toEqual([]);
    expect(laptopSeen.length - seenBefore).toBe(500);
  });

  it('shows the local fork as ready in the sandbox phase', async () => {
    const sandbox = (await call(cp.url, 'GET', '/v1/sandboxes/pr-7')).body;
    expect(sandbox.spec.forks.map((f: { workload: string }) => f.workload)).toEqual(['default/payments', 'default/orders']);
    expect(sandbox.spec.forks[1].targets[String(baseline.port)]).toBe('local');
    // Probing is off in this suite, so only the local targets are ready.
    const local = sandbox.status.targets.filter((t: { target: string }) => t.target === 'local');
    expect(local.length).toBe(3);
    expect(local.every((t: { ready: boolean }) => t.ready)).toBe(true);
  });

  it("the laptop reaches cluster services through --expose, and the key in its baggage steers them to the sandbox's forks", async () => {
    const keyed = JSON.parse((await get('/call-payments', true)).body) as { name: string; headers: Record<string, string> };
    expect(keyed.name).toBe('payments-fork');
    expect(keyed.headers.baggage).toBe(`laneway=${key}`);
    // Without the key the same exposure reaches the payments baseline.
    const direct = await request(`http://127.0.0.1:${exposePort}/pay`);
    expect(JSON.parse(await direct.body.text()).name).toBe('payments');
  });

  it('an exposure the target guard forbids (here: the control plane itself) is refused before any connection is made', async () => {
    const text = await new Promise<string>((resolve) => {
      const socket = connect(forbiddenPort, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = '';
      socket.on('data', (d: Buffer) => (out += d.toString()));
      socket.on('close', () => resolve(out));
      socket.on('error', () => resolve(out));
    });
    expect(text).toBe('');
    expect(cp.output()).toMatch(new RegExp(`${new URL(cp.url).host.replace(/\./g, '\\.')}[^\n]*the control plane's own listener[^\n]*exposure refused`));
  });

  it('streams a 50 MB upload and a 20 MB download through the tunnel', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 0x62);
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 50; i++) yield chunk;
    }
    const up = await request(`http://127.0.0.1:${sidecar.port}/upload`, { method: 'POST', headers: { baggage: `laneway=${key}` }, body: Readable.from(body()) });
    expect(JSON.parse(await up.body.text())).toEqual({ name: 'laptop', bytes: 50 * 1024 * 1024 });
    const down = await request(`http://127.0.0.1:${sidecar.port}/download`, { headers: { baggage: `laneway=${key}` } });
    let bytes = 0;
    for await (const part of down.body) {
      bytes += (part as Buffer).length;
      if (bytes < 2 * 1024 * 1024) await new Promise((r) => setTimeout(r, 5)); // a slow reader at first
    }
    expect(bytes).toBe(20 * 1024 * 1024);
  }, 60_000);

  it('carries an upgrade (WebSocket-style) both ways', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(sidecar.port, '127.0.0.1', () =>
        socket.write(`GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\nbaggage: laneway=${key}\r\n\r\n`),
      );
      let out = '';
      socket.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\r\n\r\n') && !out.includes('ping')) socket.write('ping');
        if (out.includes('echo ping')) {
          socket.destroy();
          resolve(out);
        }
      });
      socket.on('error', reject);
    });
    expect(text.startsWith('HTTP/1.1 101')).toBe(true);
    expect(text).toMatch(/laneway-sandbox: pr-7/i);
  });

  it('carries HTTP/2 (gRPC-shaped): trailers arrive, and a client cancel reaches the laptop', async () => {
    const session = http2.connect(`http://127.0.0.1:${h2Port}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/svc/Call', 'content-type': 'application/grpc', te: 'trailers', baggage: `laneway=${key}` });
      stream.end('req');
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      let body = '';
      stream.on('data', (d: Buffer) => (body += d.toString()));
      const [trailers] = (await once(stream, 'trailers')) as [http2.IncomingHttpHeaders];
      expect(headers['x-served-by']).toBe('laptop-h2');
      expect(trailers['grpc-message']).toBe('from-laptop');
      await once(stream, 'close');
      expect(body).toBe('laptop');

      const hanging = session.request({ ':method': 'POST', ':path': '/hang', 'content-type': 'application/grpc', baggage: `laneway=${key}` });
      await once(hanging, 'response');
      hanging.close(http2.constants.NGHTTP2_CANCEL);
      await waitFor('the cancel at the laptop', () => laptopH2Streams.find((s) => s.path === '/hang')?.closed === true, 3000);
      expect(laptopH2Streams.find((s) => s.path === '/hang')!.aborted).toBe(true);
    } finally {
      session.close();
    }
  });

  it('an agent asks the MCP server for a local lane, gets the key back, and ends it', async () => {
    const mcp = new Client({ name: 'laneway-test', version: '1.0.0' });
    await mcp.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [CLI, 'mcp'],
        env: { PATH: process.env.PATH ?? '', LANEWAY_URL: cp.url, XDG_STATE_HOME: tempDir('laneway-mcp-state-') },
        stderr: 'pipe',
      }),
    );
    try {
      const connected = await mcp.callTool({ name: 'local_lane_connect', arguments: { sandbox: 'pr-8', workload: 'default/orders', ports: { [String(baseline.port)]: `127.0.0.1:${laptopPort}` } } });
      const text = (connected.content as { text: string }[])[0]!.text;
      expect(connected.isError ?? false).toBe(false);
      const agentKey = /routing key: (\S+)/.exec(text)![1]!;
      await waitFor('the MCP lane at the sidecar', async () => {
        const res = await request(`http://127.0.0.1:${sidecar.port}/mcp`, { headers: { baggage: `laneway=${agentKey}` } });
        return JSON.parse(await res.body.text()).name === 'laptop';
      }, 10_000);
      const ended = await mcp.callTool({ name: 'local_lane_disconnect', arguments: { sandbox: 'pr-8' } });
      expect((ended.content as { text: string }[])[0]!.text).toBe('sandbox/pr-8 deleted');
      expect((await call(cp.url, 'GET', '/v1/sandboxes/pr-8')).status).toBe(404);
    } finally {
      await mcp.close();
    }
  });

  it('the relay refuses a tunnel (CONNECT) or request that names no local fork 404, never forwarding it', async () => {
    const relay = relayTarget();
    const seen = laptopSeen.length;
    for (const fork of [`nope@default/orders:${baseline.port}`, 'garbage', `${key}@default/payments:1`]) {
      const refusal = await dial(relay, fork);
      expect(refusal).toBeInstanceOf(LaneRefusedError);
      expect(refusal).toMatchObject({ status: 404, code: 'LANEWAY_ERR_LANE_NOT_LOCAL' });
      expect(JSON.parse((refusal as LaneRefusedError).body).error.code).toBe('LANEWAY_ERR_LANE_NOT_LOCAL');
    }
    // A plain request is never relayed, not even one naming the lane: sidecars tunnel HTTP/1.1 with CONNECT.
    for (const headers of [{}, { 'laneway-fork': `${key}@default/orders:${baseline.port}` }]) {
      const res = await request(`http://${relay.host}:${relay.port}/x`, { headers });
      expect(res.statusCode).toBe(404);
      expect(JSON.parse(await res.body.text()).error.code).toBe('LANEWAY_ERR_LANE_NOT_LOCAL');
    }
    expect(laptopSeen.length).toBe(seen);
  });

  it("a local service that is not running: the laptop's 502 LOCAL_UNAVAILABLE reaches the client as JSON, never the baseline", async () => {
    const refusal = await dial(relayTarget(), `${key}@default/orders:${DEAD_APP_PORT}`);
    expect(refusal).toMatchObject({ status: 502, code: 'LANEWAY_ERR_LOCAL_UNAVAILABLE' });
    expect(JSON.parse((refusal as LaneRefusedError).body).error.message).toMatch(/ECONNREFUSED/);
  });

  it('more tunnels than a lane carries are refused 503 LANE_BUSY at once instead of queueing', async () => {
    const relay = relayTarget();
    const fork = `${key}@default/orders:${baseline.port}`;
    const results = await Promise.all(Array.from({ length: LANE_MAX_STREAMS + 10 }, () => dial(relay, fork)));
    try {
      const open = results.filter((r): r is Socket => !(r instanceof Error));
      const refused = results.filter((r) => r instanceof LaneRefusedError);
      // The sidecar's idle keep-alive tunnels from earlier tests count too: at most the cap is open.
      expect(open.length).toBeLessThanOrEqual(LANE_MAX_STREAMS);
      expect(open.length).toBeGreaterThan(LANE_MAX_STREAMS / 2);
      expect(refused.length).toBe(results.length - open.length);
      expect(refused.every((r) => r.status === 503 && r.code === 'LANEWAY_ERR_LANE_BUSY')).toBe(true);
      // A tunnel carries HTTP/1.1 to the laptop, keep-alive.
      const socket = open[0]!;
      socket.write('GET /through-connect HTTP/1.1\r\nhost: x\r\n\r\n');
      const [answer] = (await once(socket, 'data')) as [Buffer];
      expect(answer.toString()).toMatch(/^HTTP\/1\.1 200[\s\S]*"name":"laptop"/);
    } finally {
      for (const r of results) if (!(r instanceof Error)) r.destroy();
    }
    // The lane serves again once they are gone.
    await waitFor('the lane after the flood', async () => (await get('/after-flood', true)).status === 200, 5000);
  });

  it('carries real gRPC (grpc-js): unary with a deadline, bidi streaming, and a client cancel that reaches the laptop', async () => {
    const events: string[] = [];
    const grpcServer = await startGrpcServer('laptop-grpc', events);
    const child = spawn(
      process.execPath,
      [CLI, 'connect', '--server', cp.url, '--sandbox', 'pr-grpc', '--workload', 'default/orders', '--port', `${h2AppPort()}=127.0.0.1:${grpcServer.port}`],
      { env: { ...process.env, XDG_STATE_HOME: tempDir('laneway-grpc-state-') }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const output = await waitForOutput(child, /routing key: (\S+)/, 'laneway connect (grpc)', 30_000);
    const grpcKey = /routing key: (\S+)/.exec(output())![1]!;
    const client = new EchoClient(`127.0.0.1:${h2Port}`, grpc.credentials.createInsecure()) as unknown as EchoStub;
    const md = new grpc.Metadata();
    md.set('baggage', `laneway=${grpcKey}`);
    const unary = (req: Msg, options: grpc.CallOptions = {}): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => client.unary(req, md, options, (err: grpc.ServiceError | null, res: Record<string, unknown>) => (err ? reject(err) : resolve(res))));
    try {
      await waitFor('the gRPC lane', async () => (await unary({ text: 'hi' }).catch((): Record<string, unknown> => ({}))).from === 'laptop-grpc', 10_000);
      expect(await unary({ text: 'hi' }, { deadline: Date.now() + 5000 })).toMatchObject({ from: 'laptop-grpc', text: 'hi', hasDeadline: true });
      await expect(unary({ slow: true }, { deadline: Date.now() + 300 })).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
      await expect(unary({ fail: true })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'not found at laptop-grpc' });

      const bidi = client.bidi(md);
      const echoed: string[] = [];
      bidi.on('data', (m: { text: string }) => echoed.push(m.text));
      for (const text of ['a', 'b', 'c']) bidi.write({ text });
      bidi.end();
      await once(bidi, 'end');
      expect(echoed).toEqual(['a', 'b', 'c']);

      const stream = client.serverStream({ n: 1000 }, md);
      stream.on('error', () => {});
      await once(stream, 'data');
      stream.cancel();
      await waitFor('the cancel at the laptop gRPC server', () => events.includes('laptop-grpc:cancelled'), 5000);
    } finally {
      client.close();
      child.kill('SIGINT');
      await once(child, 'exit');
      grpcServer.server.forceShutdown();
    }
  }, 60_000);

  it('another machine cannot take the lane while it is held (409)', async () => {
    const other = spawn(
      process.execPath,
      [CLI, 'connect', '--server', cp.url, '--sandbox', 'pr-7', '--workload', 'default/orders', '--port', `${baseline.port}=127.0.0.1:${laptopPort}`],
      { env: { ...process.env, XDG_STATE_HOME: tempDir('laneway-other-') }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    other.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = await once(other, 'exit');
    expect(code).toBe(1);
    expect(stderr).toContain('LANEWAY_ERR_LANE_TAKEN 409');
    // The lane still works for its owner.
    expect(JSON.parse((await get('/still', true)).body).name).toBe('laptop');
  });

  it('kill -9 of laneway connect: keyed requests get 502 LANE_DISCONNECTED within a second, never the baseline; running it again restores the lane', async () => {
    connectProc.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor('a 502 after the kill', async () => (await get('/after-kill', true)).status === 502, 1000);
    expect(Date.now() - killedAt).toBeLessThan(1000);
    const keyed = await get('/after-kill', true);
    expect(JSON.parse(keyed.body).error.code).toBe('LANEWAY_ERR_LANE_DISCONNECTED');
    expect(keyed.headers['laneway-error']).toBe('LANEWAY_ERR_LANE_DISCONNECTED');
    expect(JSON.parse((await get('/after-kill', false)).body).name).toBe('baseline');
    const phase = (await call(cp.url, 'GET', '/v1/sandboxes/pr-7')).body.status;
    expect(phase.phase).toBe('Pending');
    expect(phase.targets.find((t: { target: string }) => t.target === 'local').reason).toMatch(/not connected/);

    const again = await startConnect();
    connectProc = again.child;
    expect(again.key).toBe(key); // the sandbox was kept (no Ctrl-C): same key
    await waitFor('the lane back', async () => (await get('/back', true)).status === 200, 5000);
    expect(JSON.parse((await get('/back', true)).body).name).toBe('laptop');
  });

  it('the control plane restarting: laneway connect reconnects by itself and the lane comes back without re-registering', async () => {
    const apiPort = new URL(cp.url).port;
    const relay = /local lanes via (\S+?)\)/.exec(cp.output())![1]!;
    const revision = (await call(cp.url, 'GET', '/v1/sandboxes/pr-7')).body.status.revision;
    await cp.stop();
    cp = await startControlPlane(cpData, ['--listen', `127.0.0.1:${apiPort}`, '--lane-listen', relay, '--probe-interval', '0']);
    await waitFor('the lane after the restart', async () => {
      const res = await get('/after-restart', true);
      return res.status === 200 && JSON.parse(res.body).name === 'laptop';
    }, 15_000);
    // Same sandbox, same revision: nothing was applied again.
    expect((await call(cp.url, 'GET', '/v1/sandboxes/pr-7')).body.status.revision).toBe(revision);
  }, 60_000);

  it('laneway connect -- <command> runs the local service with PORT and the key, and stops it on exit', async () => {
    const port = await freePort();
    const script = "require('http').createServer((q,s)=>s.end(JSON.stringify({name:'child',key:process.env.LANEWAY_ROUTING_KEY}))).listen(Number(process.env.PORT),'127.0.0.1',()=>console.log('child up'))";
    const child = spawn(
      process.execPath,
      [CLI, 'connect', '--server', cp.url, '--sandbox', 'pr-cmd', '--workload', 'default/orders', '--port', `${baseline.port}=127.0.0.1:${port}`, '--', process.execPath, '-e', script],
      { env: { ...process.env, XDG_STATE_HOME: tempDir('laneway-cmd-state-') }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const output = await waitForOutput(child, /child up/, 'laneway connect -- node', 30_000);
    const cmdKey = /routing key: (\S+)/.exec(output())![1]!;
    await waitFor('the command behind the lane', async () => {
      const res = await request(`http://127.0.0.1:${sidecar.port}/`, { headers: { baggage: `laneway=${cmdKey}` } });
      const body = await res.body.text();
      return res.statusCode === 200 && body.includes('"child"');
    }, 10_000);
    const res = await request(`http://127.0.0.1:${sidecar.port}/`, { headers: { baggage: `laneway=${cmdKey}` } });
    expect(JSON.parse(await res.body.text())).toEqual({ name: 'child', key: cmdKey });
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    // The command was stopped with it: its port is free again, and the sandbox it created is gone.
    await waitFor('the command stopped', async () => {
      try {
        await request(`http://127.0.0.1:${port}/`);
        return false;
      } catch {
        return true;
      }
    }, 5000);
    expect((await call(cp.url, 'GET', '/v1/sandboxes/pr-cmd')).status).toBe(404);
  }, 60_000);

  it('Ctrl-C removes the local fork, keeps the in-cluster one, and frees the lane', async () => {
    connectProc.kill('SIGINT');
    const [code] = await once(connectProc, 'exit');
    expect(code).toBe(0);
    const left = (await call(cp.url, 'GET', '/v1/sandboxes/pr-7')).body;
    expect(left.spec.forks.map((f: { workload: string }) => f.workload)).toEqual(['default/payments']);
    await waitFor('orders back on the baseline for the key', async () => JSON.parse((await get('/gone', true)).body).name === 'baseline', 5000);
  });
});

describe('lane tunnel authentication', () => {
  let secured: ControlPlaneProcess;
  beforeAll(async () => {
    const dir = tempDir();
    const tokens = join(dir, 'tokens');
    writeFileSync(tokens, 'writer:writer-token-0123456789\nreader:reader-token-0123456789\n');
    secured = await startControlPlane(join(dir, 'data'), ['--tokens-file', tokens, '--lane-listen', '127.0.0.1:0', '--probe-interval', '0']);
    const put = await call(secured.url, 'PUT', '/v1/sandboxes/pr-9', { spec: { forks: [{ workload: 'default/orders', targets: { '8080': 'local' } }] } }, 'writer-token-0123456789');
    expect(put.status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await secured?.stop();
  });

  function upgrade(token: string | undefined): Promise<{ status: number; code: string }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { connection: 'upgrade', upgrade: 'laneway-lane', 'laneway-lane-session': 'a'.repeat(32) };
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      const req = httpRequest(`${secured.url}/v1/sandboxes/pr-9/lane`, { headers });
      req.on('upgrade', (_res, socket) => {
        socket.destroy();
        resolve({ status: 101, code: '' });
      });
      req.on('response', async (res) => {
        let text = '';
        for await (const c of res) text += String(c);
        resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text) as { error: { code: string } }).error.code });
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('refuses no token (401) and a reader token (403); a writer token connects', async () => {
    expect(await upgrade(undefined)).toEqual({ status: 401, code: 'LANEWAY_ERR_UNAUTHENTICATED' });
    expect(await upgrade('reader-token-0123456789')).toEqual({ status: 403, code: 'LANEWAY_ERR_FORBIDDEN' });
    expect((await upgrade('writer-token-0123456789')).status).toBe(101);
  });

  it('refuses local targets on a control plane without a relay (400 naming the field)', async () => {
    const plain = await startControlPlane(tempDir(), ['--probe-interval', '0']);
    try {
      const res = await call(plain.url, 'PUT', '/v1/sandboxes/pr-1', { spec: { forks: [{ workload: 'default/orders', targets: { '8080': 'local' } }] } });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('LANEWAY_ERR_LANES_OFF');
      expect(res.body.error.field).toBe('spec.forks[0].targets.8080');
    } finally {
      await plain.stop();
    }
  });
});
