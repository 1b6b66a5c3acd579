// Lane isolation on HTTP/1 through a real sidecar: failed upgrades, header-count limit, protected carriers, bad targets, key precedence.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer as createNetServer, type Server as NetServer } from 'node:net';
import { request } from 'undici';
import { WebSocketServer } from 'ws';
import { freePort, startSidecar, type SidecarProcess } from '../helpers/processes.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';
import { writeRoutesFile } from '../helpers/routes.js';
import { HeaderRules, scanHeaders } from '../../proxy/headers.js';

let baseline: Upstream;
let forkA: Upstream;
let forkB: Upstream;
let sidecar: SidecarProcess;
/** A keep-alive upstream that answers every request head with 200, Upgrade or not, and records each request line. */
let raw: NetServer;
const rawLines: string[] = [];
/** headers of each WebSocket handshake forkB accepted */
const wsHeaders: Record<string, string | string[] | undefined>[] = [];
const dir = mkdtempSync(join(tmpdir(), 'laneway-isolation-'));

beforeAll(async () => {
  baseline = await startUpstream('baseline');
  forkA = await startUpstream('forkA');
  forkB = await startUpstream('forkB');
  // forkB speaks WebSocket; baseline and forkA answer an Upgrade with a plain 200 (no 'upgrade' listener).
  const wss = new WebSocketServer({ server: forkB.server });
  wss.on('connection', (ws, req) => {
    wsHeaders.push(req.headers);
    ws.on('message', (d) => ws.send(`echo ${d.toString()}`));
  });
  raw = createNetServer((socket) => {
    let buffered = '';
    socket.on('data', (d: Buffer) => {
      buffered += d.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        rawLines.push(buffered.slice(0, buffered.indexOf('\r\n')));
        buffered = buffered.slice(end + 4);
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nraw');
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  const rawPort = (raw.address() as { port: number }).port;
  const routes = join(dir, 'routes.json');
  writeRoutesFile(routes, [
    { key: 'keyA', sandbox: 'pr-a', targets: { [String(baseline.port)]: `127.0.0.1:${forkA.port}` } },
    { key: 'keyB', sandbox: 'pr-b', targets: { [String(baseline.port)]: `127.0.0.1:${forkB.port}` } },
    { key: 'keyDead', sandbox: 'pr-dead', targets: { [String(baseline.port)]: `127.0.0.1:${await freePort()}` } },
    { key: 'keyRaw', sandbox: 'pr-raw', targets: { [String(baseline.port)]: `127.0.0.1:${rawPort}` } },
  ]);
  sidecar = await startSidecar({ appPort: baseline.port, extra: ['--routes-file', routes] });
});

afterAll(async () => {
  await sidecar?.stop();
  raw?.close();
  await Promise.all([baseline?.close(), forkA?.close(), forkB?.close()]);
});

/** Writes raw bytes to the sidecar; resolves with everything read when the sidecar closes, or after `waitMs`. */
function exchange(bytes: string, waitMs = 1500): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(sidecar.port, '127.0.0.1', () => socket.write(bytes, 'latin1'));
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, waitMs);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const done = (): void => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    };
    socket.on('close', done);
    socket.on('error', () => {});
  });
}

function head(lines: string[]): string {
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Requests every upstream has seen so far, across all three. */
function seenCounts(): [number, number, number] {
  return [baseline.seen.length, forkA.seen.length, forkB.seen.length];
}

const statusLines = (text: string): string[] => text.match(/^HTTP\/1\.1 \d{3}[^\r]*/gm) ?? [];

describe('item 1: only a 101 becomes a tunnel', () => {
  it('an upgrade answered 200 by a keep-alive upstream: the next request on the connection is not spliced to it', async () => {
    const before = seenCounts();
    const { text, closed } = await exchange(
      head(['GET /up HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade', 'baggage: laneway=keyRaw']) +
        head(['GET /S HTTP/1.1', 'Host: x', 'baggage: laneway=keyA']),
    );
    expect(rawLines).toEqual(['GET /up HTTP/1.1']);
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(text.endsWith('\r\n\r\nraw')).toBe(true);
    expect(text).toMatch(/\r\nconnection: close\r\n/i);
    expect(seenCounts()).toEqual(before);
    expect(closed).toBe(true);
  });

  it('a key-A upgrade answered 200, then a key-B request on the same connection: never reaches fork A, connection closes', async () => {
    const before = seenCounts();
    const { text, closed } = await exchange(
      head(['GET /up HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade', 'baggage: laneway=keyA']) +
        head(['GET /S HTTP/1.1', 'Host: x', 'baggage: laneway=keyB']),
    );
    const after = seenCounts();
    // fork A got the upgrade request and nothing else; the pipelined key-B request went nowhere blind.
    expect(forkA.seen.slice(before[1]).map((r) => r.url)).toEqual(['/up']);
    expect(after[0] - before[0]).toBe(0);
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(text).toMatch(/\r\nlaneway-sandbox: pr-a\r\n/i);
    expect(text).toMatch(/\r\nconnection: close\r\n/i);
    expect(text).toContain('"name":"forkA"');
    expect(closed).toBe(true);
  });

  it('a no-key upgrade answered 200, then a key-A request: the baseline never sees it as part of a tunnel', async () => {
    const before = seenCounts();
    const { text, closed } = await exchange(
      head(['GET /up HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade']) + head(['GET /S HTTP/1.1', 'Host: x', 'baggage: laneway=keyA']),
    );
    expect(baseline.seen.slice(before[0]).map((r) => r.url)).toEqual(['/up']);
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(closed).toBe(true);
  });

  it('the upgrade request carries via and x-forwarded-for like every other forwarded request', async () => {
    const before = baseline.seen.length;
    await exchange(head(['GET /up HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade']));
    const seen = baseline.seen[before]!;
    expect(seen.headers.via).toBe('1.1 laneway');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers.upgrade).toBe('websocket');
  });

  it('Upgrade: h2c is served as a plain HTTP/1.1 request (RFC 9113 §3.1), never tunnelled', async () => {
    const before = seenCounts();
    const { text, closed } = await exchange(
      head(['GET /h2c HTTP/1.1', 'Host: x', 'Upgrade: h2c', 'Connection: Upgrade, HTTP2-Settings', 'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA', 'baggage: laneway=keyA']) +
        head(['GET /S HTTP/1.1', 'Host: x', 'baggage: laneway=keyB']),
    );
    const seen = forkA.seen.slice(before[1]);
    expect(seen.map((r) => r.url)).toEqual(['/h2c']);
    expect(seen[0]!.headers.upgrade).toBeUndefined();
    expect(seen[0]!.headers['http2-settings']).toBeUndefined();
    expect(seen[0]!.headers.via).toBe('1.1 laneway');
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(seenCounts()[0]).toBe(before[0]);
    expect(closed).toBe(true);
  });

  it('an upgrade to a sandbox that is down → 502 from the sidecar, connection closed', async () => {
    const { text, closed } = await exchange(head(['GET /up HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade', 'baggage: laneway=keyDead']));
    expect(statusLines(text)).toEqual(['HTTP/1.1 502 Bad Gateway']);
    expect(text).toMatch(/\r\nlaneway-error: LANEWAY_ERR_SANDBOX_UNREACHABLE\r\n/i);
    expect(closed).toBe(true);
  });

  it('an upgrade request with a Content-Length body forwards exactly that body', async () => {
    const before = baseline.seen.length;
    const { text } = await exchange(head(['POST /body HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade', 'Content-Length: 5']) + 'hello');
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(baseline.seen[before]!.headers['content-length']).toBe('5');
  });

  it('a real 101 still becomes a tunnel, with laneway-sandbox on it', async () => {
    const { text } = await new Promise<{ text: string }>((resolve) => {
      const socket = connect(sidecar.port, '127.0.0.1', () =>
        socket.write(
          head(['GET /ws HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'baggage: laneway=keyB']),
        ),
      );
      let out = '';
      socket.on('data', (d: Buffer) => {
        out += d.toString('latin1');
        if (out.includes('\r\n\r\n') && !out.includes('echo')) {
          // one masked text frame "hi" (RFC 6455 §5.2)
          const mask = [1, 2, 3, 4];
          const payload = Buffer.from('hi').map((b, i) => b ^ mask[i % 4]!);
          socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | 2, ...mask]), payload]));
        }
        if (out.includes('echo hi')) {
          socket.destroy();
          resolve({ text: out });
        }
      });
    });
    expect(statusLines(text)[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(text).toMatch(/\r\nlaneway-sandbox: pr-b\r\n/i);
    expect(wsHeaders.at(-1)!.via).toBe('1.1 laneway');
    expect(wsHeaders.at(-1)!['laneway-hops']).toBe('1');
    expect(wsHeaders.at(-1)!['laneway-fork']).toBe(`keyB@default/orders:${baseline.port}`);
  });
});

describe('laneway-fork: which baseline workload and port a fork stands in for', () => {
  it('is set on the sandbox path only, and a client cannot set it', async () => {
    const forged = 'laneway-fork: other/payments:1';
    const toFork = forkA.seen.length;
    const toBaseline = baseline.seen.length;
    expect(statusLines((await exchange(head(['GET /f HTTP/1.1', 'Host: x', 'Connection: close', 'baggage: laneway=keyA', forged]))).text)).toEqual(['HTTP/1.1 200 OK']);
    expect(statusLines((await exchange(head(['GET /f HTTP/1.1', 'Host: x', 'Connection: close', forged]))).text)).toEqual(['HTTP/1.1 200 OK']);
    expect(forkA.seen[toFork]!.headers['laneway-fork']).toBe(`keyA@default/orders:${baseline.port}`);
    expect(baseline.seen[toBaseline]!.headers['laneway-fork']).toBeUndefined();
  });
});

describe('item 3: more request headers than the limit → 431, never a truncated request', () => {
  it('1,999 filler lines then baggage → 431 LANEWAY_ERR_TOO_MANY_HEADERS, nothing forwarded', async () => {
    const before = seenCounts();
    const fillers = Array.from({ length: 1999 }, () => 'a: 1');
    const { text } = await exchange(head(['GET /many HTTP/1.1', 'Host: x', ...fillers, 'baggage: laneway=keyA', 'Connection: close']));
    expect(statusLines(text)).toEqual(['HTTP/1.1 431 Request Header Fields Too Large']);
    expect(text).toMatch(/\r\nlaneway-error: LANEWAY_ERR_TOO_MANY_HEADERS\r\n/i);
    expect(seenCounts()).toEqual(before);
  });

  it('an upgrade with too many headers → 431 too', async () => {
    const before = seenCounts();
    const fillers = Array.from({ length: 1999 }, () => 'a: 1');
    const { text } = await exchange(head(['GET /many HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade', ...fillers, 'baggage: laneway=keyA']));
    expect(statusLines(text)).toEqual(['HTTP/1.1 431 Request Header Fields Too Large']);
    expect(seenCounts()).toEqual(before);
  });

  it('a request just under the limit is forwarded whole, baggage at the end included', async () => {
    const before = forkA.seen.length;
    const fillers = Array.from({ length: 496 }, (_, i) => `f${i}: 1`);
    const { text } = await exchange(head(['GET /ok HTTP/1.1', 'Host: x', ...fillers, 'baggage: laneway=keyA', 'Connection: close']));
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    const seen = forkA.seen[before]!;
    expect(seen.headers.f495).toBe('1');
    expect(seen.headers.baggage).toBe('laneway=keyA');
  });
});

describe('item 4: routing-key carriers are never hop-by-hop', () => {
  it('Connection naming the carriers does not strip them from the forwarded request', async () => {
    const before = forkA.seen.length;
    const { text } = await exchange(
      head([
        'GET /conn HTTP/1.1',
        'Host: x',
        'Connection: baggage, tracestate, ot-baggage-laneway, uberctx-laneway, laneway-hops, x-private, close',
        'baggage: laneway=keyA',
        'tracestate: rojo=1',
        'ot-baggage-laneway: keyA',
        'uberctx-laneway: keyA',
        'laneway-hops: 1',
        'x-private: secret',
      ]),
    );
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    const seen = forkA.seen[before]!.headers;
    expect(seen.baggage).toBe('laneway=keyA');
    expect(seen.tracestate).toBe('rojo=1');
    expect(seen['ot-baggage-laneway']).toBe('keyA');
    expect(seen['uberctx-laneway']).toBe('keyA');
    expect(seen['laneway-hops']).toBe('2');
    // other listed headers still go (RFC 9110 §7.6.1)
    expect(seen['x-private']).toBeUndefined();
  });
});

describe('item 10: request targets and Host the sidecar cannot forward → 400 from the sidecar itself', () => {
  async function upstreamErrors(): Promise<number> {
    const text = await (await request(`${sidecar.admin}/metrics`)).body.text();
    let sum = 0;
    for (const m of text.matchAll(/^laneway_upstream_errors_total\{[^}]*\} (\d+)/gm)) sum += Number(m[1]);
    return sum;
  }

  it.each([
    ['absolute-form', ['GET http://127.0.0.1:9/latest/ HTTP/1.1', 'Host: 127.0.0.1:9', 'Connection: close']],
    ['absolute-form with a key', ['GET http://127.0.0.1:9/latest/ HTTP/1.1', 'Host: 127.0.0.1:9', 'baggage: laneway=keyA', 'Connection: close']],
    ['asterisk-form', ['OPTIONS * HTTP/1.1', 'Host: x', 'Connection: close']],
    ['duplicate Host', ['GET / HTTP/1.1', 'Host: a', 'host: b', 'Connection: close']],
    ['absolute-form upgrade', ['GET http://127.0.0.1:9/ws HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade']],
    ['duplicate Host on an upgrade', ['GET /ws HTTP/1.1', 'Host: a', 'Host: b', 'Upgrade: websocket', 'Connection: Upgrade']],
  ])('%s → 400 LANEWAY_ERR_BAD_REQUEST, no upstream contacted, no upstream error counted', async (_label, lines) => {
    const before = seenCounts();
    const errorsBefore = await upstreamErrors();
    const { text } = await exchange(head(lines));
    expect(statusLines(text)).toEqual(['HTTP/1.1 400 Bad Request']);
    expect(text).toMatch(/\r\nlaneway-error: LANEWAY_ERR_BAD_REQUEST\r\n/i);
    expect(seenCounts()).toEqual(before);
    expect(await upstreamErrors()).toBe(errorsBefore);
  });
});

describe('item 12: one precedence rule for every carrier', () => {
  // The README table "Where the routing key comes from", row by row: [label, headers, expected lane].
  const rows: [string, [string, string][], 'baseline' | 'forkA' | 'forkB'][] = [
    ['baggage decides over every other carrier', [['baggage', 'laneway=keyA'], ['ot-baggage-laneway', 'keyB'], ['uberctx-laneway', 'keyB'], ['tracestate', 'laneway=keyB']], 'forkA'],
    ['a well-formed unknown key in baggage still decides → baseline', [['baggage', 'laneway=nosuch'], ['tracestate', 'laneway=keyB']], 'baseline'],
    ['a malformed baggage member is no member: the next carrier decides', [['baggage', 'laneway=key A'], ['tracestate', 'laneway=keyB']], 'forkB'],
    ['baggage without the key: the next carrier decides', [['baggage', 'a=b'], ['ot-baggage-laneway', 'keyB']], 'forkB'],
    ['ot-baggage before uberctx', [['uberctx-laneway', 'keyB'], ['ot-baggage-laneway', 'keyA']], 'forkA'],
    ['uberctx before tracestate', [['tracestate', 'laneway=keyA'], ['uberctx-laneway', 'keyB']], 'forkB'],
    ['an unknown key in ot-baggage decides → baseline', [['ot-baggage-laneway', 'nosuch'], ['tracestate', 'laneway=keyA']], 'baseline'],
    ['an empty ot-baggage value is no member', [['ot-baggage-laneway', ''], ['uberctx-laneway', 'keyA']], 'forkA'],
    ['baggage: last member wins', [['baggage', 'laneway=keyA,laneway=keyB']], 'forkB'],
    ['baggage: last header line wins', [['baggage', 'laneway=keyA'], ['baggage', 'laneway=keyB']], 'forkB'],
    ['baggage: a malformed last member does not hide an earlier one', [['baggage', 'laneway=keyA,laneway=bad value']], 'forkA'],
    ['tracestate: last member wins', [['tracestate', 'laneway=keyA,laneway=keyB']], 'forkB'],
    ['tracestate: last header line wins', [['tracestate', 'laneway=keyA'], ['tracestate', 'laneway=keyB']], 'forkB'],
    ['ot-baggage: last header line wins', [['ot-baggage-laneway', 'keyA'], ['ot-baggage-laneway', 'keyB']], 'forkB'],
    ['ot-baggage: a malformed last line does not hide an earlier one', [['ot-baggage-laneway', 'keyB'], ['ot-baggage-laneway', '%zz']], 'forkB'],
    ['uberctx: last header line wins', [['uberctx-laneway', 'keyA'], ['uberctx-laneway', 'keyB']], 'forkB'],
  ];

  const keyOf: Record<string, string | undefined> = { baseline: undefined, forkA: 'keyA', forkB: 'keyB' };
  const rules = new HeaderRules('laneway');

  it.each(rows)('scan: %s', (_label, headers, lane) => {
    const key = scanHeaders(headers.flat(), rules).routingKey('laneway');
    if (lane === 'baseline') expect(key === undefined || key === 'nosuch').toBe(true);
    else expect(key).toBe(keyOf[lane]);
  });

  it.each(rows)('sidecar: %s', async (_label, headers, lane) => {
    const { text } = await exchange(head(['GET /p HTTP/1.1', 'Host: x', ...headers.map(([n, v]) => `${n}: ${v}`), 'Connection: close']));
    expect(text).toContain(`"name":"${lane}"`);
  });
});
