// Request smuggling through a real sidecar: CL.TE, TE.CL, TE.TE variants and other framing ambiguities must be refused
// (RFC 9112 §6.1, §6.3, §7.1) before anything reaches an upstream, and no request may change lane.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { startSidecar, type SidecarProcess } from '../helpers/processes.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';
import { writeRoutesFile } from '../helpers/routes.js';

const KEY = 'smugglekey0123456789';
const dir = mkdtempSync(join(tmpdir(), 'laneway-smuggling-'));

let baseline: Upstream;
let fork: Upstream;
let sidecar: SidecarProcess;
/** every byte each upstream received, across connections: a smuggled request would show up here */
const received = { baseline: '', fork: '' };

beforeAll(async () => {
  const echo = (name: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name, method: req.method, url: req.url, body }));
    });
  };
  [baseline, fork] = await Promise.all([startUpstream('baseline', echo('baseline')), startUpstream('fork', echo('fork'))]);
  baseline.server.on('connection', (s: Socket) => s.on('data', (d: Buffer) => (received.baseline += d.toString('latin1'))));
  fork.server.on('connection', (s: Socket) => s.on('data', (d: Buffer) => (received.fork += d.toString('latin1'))));
  const routes = writeRoutesFile(join(dir, 'routes.json'), [{ key: KEY, sandbox: 'lane', targets: { [String(baseline.port)]: `127.0.0.1:${fork.port}` } }]);
  sidecar = await startSidecar({ appPort: baseline.port, extra: ['--routes-file', routes] });
});

afterAll(async () => {
  await sidecar?.stop();
  await Promise.all([baseline?.close(), fork?.close()]);
});

/** Writes `raw` on a fresh connection and reads until the sidecar closes it or `quietMs` pass without a byte. */
async function exchange(raw: string, quietMs = 600): Promise<string> {
  const socket = connect(sidecar.port, '127.0.0.1');
  socket.on('error', () => {});
  let got = '';
  await new Promise<void>((resolve) => {
    let timer = setTimeout(resolve, quietMs * 2);
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      clearTimeout(timer);
      timer = setTimeout(resolve, quietMs);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.write(raw, 'latin1');
  });
  socket.destroy();
  return got;
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** The responses in `raw`, framed by their content-length (every answer here has one). */
function responses(raw: string): Answer[] {
  const out: Answer[] = [];
  let at = 0;
  while (raw.startsWith('HTTP/1.1 ', at)) {
    const headEnd = raw.indexOf('\r\n\r\n', at);
    if (headEnd === -1) break;
    const head = raw.slice(at, headEnd);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? '0');
    out.push({ status: Number(head.slice(9, 12)), body: raw.slice(headEnd + 4, headEnd + 4 + length) });
    at = headEnd + 4 + length;
  }
  return out;
}

const statuses = (raw: string): number[] => responses(raw).map((r) => r.status);

/** Ambiguous or invalid framing: every one is refused with a 4xx and nothing of it reaches an upstream. */
const refused: [string, string][] = [
  ['CL.TE: Content-Length and Transfer-Encoding together', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['TE.CL: Transfer-Encoding first, then Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2a\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\nX: 1234567\r\n0\r\n\r\n'],
  ['TE.TE: chunked, then an unknown coding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['TE.TE: chunked not last', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['TE.TE: xchunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['TE.TE: space before the colon', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['TE.TE: obs-fold hides the coding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['obs-fold in any header', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n X-B: smuggled\r\n\r\n'],
  ['differing duplicate Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabcGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['a Content-Length with a sign', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabcGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['a Content-Length that is not a number', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3x\r\n\r\nabcGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['an invalid chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['a chunk size past 64 bits', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['bare LF between header lines', 'GET / HTTP/1.1\r\nHost: a\nX-Smuggled: 1\r\n\r\n'],
  ['bare CR in a header value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\rGET /smuggled HTTP/1.1\r\n\r\n'],
  ['NUL in a header value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x00smuggled\r\n\r\n'],
  ['whitespace before the first header', 'GET / HTTP/1.1\r\n Host: a\r\n\r\n'],
  ['two Host headers', 'GET /smuggled HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
  ['no Host on HTTP/1.1', 'GET /smuggled HTTP/1.1\r\n\r\n'],
  ['a request line with a bare LF', 'GET /smuggled HTTP/1.1\nHost: a\r\n\r\n'],
  ['an invalid method token', 'G(T /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['chunked on HTTP/1.0', 'POST /smuggled HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
];

describe('ambiguous framing is refused before anything reaches an upstream', () => {
  it.each(refused)('%s', async (_name, raw) => {
    const before = { baseline: received.baseline.length, fork: received.fork.length };
    const answer = await exchange(raw);
    const codes = statuses(answer);
    expect(codes.length, `answer: ${JSON.stringify(answer)}`).toBe(1);
    expect(codes[0]! >= 400 && codes[0]! < 500, `answer: ${JSON.stringify(answer)}`).toBe(true);
    // the sidecar's own JSON error, whichever layer refused it
    expect(JSON.parse(responses(answer)[0]!.body).error.code).toMatch(/^LANEWAY_ERR_(BAD_REQUEST|HEADERS_TOO_LARGE)$/);
    // nothing of the refused request, and above all no smuggled request, reached either upstream
    expect(received.baseline.slice(before.baseline)).toBe('');
    expect(received.fork.slice(before.fork)).toBe('');
  });

  it('a chunk without its CRLF, found after the head was forwarded: the upstream request is aborted, nothing after it arrives', async () => {
    const before = { baseline: received.baseline.length, seen: baseline.seen.length };
    const answer = await exchange('POST /aborted HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(statuses(answer)).toEqual([400]);
    expect(JSON.parse(responses(answer)[0]!.body).error.code).toBe('LANEWAY_ERR_BAD_REQUEST');
    // a streaming proxy sends the head before the body is read; the body never completes and nothing follows it
    expect(baseline.seen.slice(before.seen).map((r) => r.url)).toEqual(['/aborted']);
    expect(received.baseline.slice(before.baseline)).not.toContain('/smuggled');
  });

  it('an over-long head gets 431', async () => {
    const before = received.baseline.length + received.fork.length;
    const answer = await exchange(`GET /too-long HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(statuses(answer)).toEqual([431]);
    expect(JSON.parse(responses(answer)[0]!.body).error.code).toBe('LANEWAY_ERR_HEADERS_TOO_LARGE');
    expect(received.baseline.length + received.fork.length).toBe(before);
  });
});

describe('no request changes lane', () => {
  it('a request hidden in a baseline body stays body: the fork never sees it', async () => {
    const hidden = `GET /smuggled HTTP/1.1\r\nHost: a\r\nbaggage: laneway=${KEY}\r\n\r\n`;
    const answer = await exchange(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`);
    expect(statuses(answer)).toEqual([200]);
    const body = JSON.parse(responses(answer)[0]!.body);
    expect(body).toMatchObject({ name: 'baseline', url: '/upload', body: hidden });
    expect(received.fork).not.toContain('/smuggled');
  });

  it('a chunked sandbox request: the chunks are its body, the bytes after them the next request on its own lane', async () => {
    const chunked = `POST /lane HTTP/1.1\r\nHost: a\r\nbaggage: laneway=${KEY}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;
    const next = 'GET /after HTTP/1.1\r\nHost: a\r\n\r\n';
    const answer = await exchange(chunked + next);
    expect(statuses(answer)).toEqual([200, 200]);
    const bodies = responses(answer).map((r) => JSON.parse(r.body));
    expect(bodies[0]).toMatchObject({ name: 'fork', url: '/lane', body: 'hello' });
    expect(bodies[1]).toMatchObject({ name: 'baseline', url: '/after' });
  });

  it('pipelined requests keep their own lanes, in order', async () => {
    const one = 'GET /one HTTP/1.1\r\nHost: a\r\n\r\n';
    const two = `GET /two HTTP/1.1\r\nHost: a\r\nbaggage: laneway=${KEY}\r\n\r\n`;
    const three = 'GET /three HTTP/1.1\r\nHost: a\r\n\r\n';
    const answer = await exchange(one + two + three);
    expect(statuses(answer)).toEqual([200, 200, 200]);
    const names = responses(answer).map((r) => JSON.parse(r.body)).map((b: { name: string; url: string }) => `${b.name} ${b.url}`);
    expect(names).toEqual(['baseline /one', 'fork /two', 'baseline /three']);
  });
});
