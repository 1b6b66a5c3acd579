// Differential fuzz of the fast-path head parser against Node's own (llhttp, as Node's HTTP server runs it): whatever
// parseRequestHead accepts, llhttp accepts with the same method, target, headers, keep-alive and body framing; every
// smuggling shape is handed over, never accepted; and the heads real clients send are accepted, not handed over.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, HEAD_FALLBACK, HEAD_INCOMPLETE, MAX_HEAD_BYTES, parseRequestHead, RequestHead } from '../../proxy/h1-head.js';

// Node's HTTP server parses with this parser and these settings (no lenient flags, 16 KiB heads).
const { HTTPParser, methods } = createRequire(import.meta.url)('_http_common') as { HTTPParser: any; methods: string[] };

interface LlhttpView {
  readonly error?: string;
  /** the first message was complete before any error */
  readonly firstComplete?: boolean;
  readonly method?: string;
  readonly target?: string;
  readonly version?: string;
  readonly rawHeaders?: string[];
  readonly upgrade?: boolean;
  readonly keepAlive?: boolean;
  /** the first message's body, and what llhttp parsed after it */
  readonly body?: string;
  readonly next?: string;
}

/** What llhttp makes of `bytes`: the first request's head and body, and the target of the request after it. */
function llhttp(bytes: Buffer): LlhttpView {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, MAX_HEAD_BYTES, 0);
  const heads: { method: string; target: string; version: string; rawHeaders: string[]; upgrade: boolean; keepAlive: boolean }[] = [];
  const bodies: string[] = [''];
  let headers: string[] = [];
  let url = '';
  parser[HTTPParser.kOnHeaders] = (h: string[], u: string) => {
    headers = headers.concat(h);
    url += u;
  };
  parser[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, h: string[] | undefined, method: number, u: string | undefined, _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean) => {
    heads.push({ method: methods[method]!, target: u ?? url, version: `${major}.${minor}`, rawHeaders: h ?? headers, upgrade, keepAlive });
    headers = [];
    url = '';
    return 0;
  };
  parser[HTTPParser.kOnBody] = (b: Buffer) => void (bodies[bodies.length - 1] += b.toString('latin1'));
  parser[HTTPParser.kOnMessageComplete] = () => void bodies.push('');
  const result = parser.execute(bytes);
  parser.finish?.();
  const error = result instanceof Error ? (result as Error & { code: string }).code : undefined;
  const first = heads[0];
  if (first === undefined) return error === undefined ? {} : { error };
  return { ...(error === undefined ? {} : { error }), firstComplete: bodies.length > 1, ...first, body: bodies[0], ...(heads[1] === undefined ? {} : { next: heads[1].target }) };
}

/** A small deterministic PRNG (mulberry32): the same cases every run, so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['Accept', 'User-Agent', 'baggage', 'traceparent', 'tracestate', 'Content-Type', 'Authorization', 'Cookie', 'X-Request-Id', 'Accept-Encoding', 'Cache-Control', 'If-None-Match', 'te', 'x-b3-traceid'];
const VALUES = ['*/*', 'curl/8.5.0', 'laneway=k7f3q2,tenant=acme', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'application/json; charset=utf-8', 'Bearer abc.def', 'a=1; b=2', 'gzip, deflate, br', 'no-cache', 'W/"abc"', 'trailers', '', '  padded  ', 'tab\there'];
const PATHS = ['/', '/items/7', '/checkout?cart=1&user=a%20b', '/a/b/c.json', "/q?x=(1)&y=*'!$;,=:@"];
const METHODS_USED = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH', 'OPTIONS'];

/** A request as an HTTP client writes one: the corpus the fast path must accept, and the seed of every mutation. */
function validRequest(rand: () => number): { head: string; body: string } {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const method = pick(METHODS_USED);
  const lines = [`${method} ${pick(PATHS)} HTTP/1.1`, `Host: ${pick(['a', 'orders.default.svc:8080', '127.0.0.1:15001'])}`];
  for (let i = Math.floor(rand() * 8); i > 0; i--) lines.push(`${pick(NAMES)}: ${pick(VALUES)}`);
  if (rand() < 0.2) lines.push(`Connection: ${pick(['keep-alive', 'close'])}`);
  let body = '';
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    if (rand() < 0.5) {
      const text = '{"n":' + Math.floor(rand() * 1e6) + '}';
      lines.push(`Content-Length: ${text.length}`);
      body = text;
    } else {
      lines.push('Transfer-Encoding: chunked');
      body = '5\r\nhello\r\n0\r\n\r\n';
    }
  }
  return { head: `${lines.join('\r\n')}\r\n\r\n`, body };
}

const NEXT = 'GET /next HTTP/1.1\r\nHost: a\r\n\r\n';

/** Checks one input: if the fast parser accepts it, llhttp agrees on all of it. Returns the fast parser's answer. */
function compare(text: string): number {
  const bytes = Buffer.from(text, 'latin1');
  const head = new RequestHead();
  const result = parseRequestHead(bytes, 0, head);
  if (result <= 0) return result;
  const oracle = llhttp(bytes);
  const context = JSON.stringify(text.slice(0, 300));
  // An error once llhttp has the head is about the body (a chunked body is the chunk decoder's to check) or what follows
  // it (the next head, parsed on its own; after `Connection: close`, HPE_CLOSED_CONNECTION): the framing is checked below.
  const after = oracle.method !== undefined;
  if (!after) expect(oracle.error, `llhttp refuses what the fast path accepted: ${context}`).toBeUndefined();
  expect(oracle.method, context).toBe(head.method);
  expect(oracle.target, context).toBe(head.target);
  expect(oracle.version, context).toBe('1.1');
  expect(oracle.rawHeaders, context).toEqual(head.rawHeaders);
  expect(oracle.upgrade, context).toBe(false);
  expect(oracle.keepAlive, context).toBe(head.keepAlive);
  // The framing: the body the fast path would forward is the body llhttp reads, and what follows is the next request.
  if (head.body === BODY_LENGTH) expect(oracle.body, context).toBe(text.slice(result, result + head.contentLength));
  if (head.body === BODY_NONE) expect(oracle.body, context).toBe('');
  const rest = head.body === BODY_LENGTH ? text.slice(result + head.contentLength) : text.slice(result);
  if (head.body !== BODY_CHUNKED && head.keepAlive && rest === NEXT) expect(oracle.next, context).toBe('/next');
  if (head.body !== BODY_CHUNKED) expect(oracle.firstComplete, context).toBe(true);
  return result;
}

describe('parseRequestHead against llhttp', () => {
  it('accepts the heads real clients send, with the parse llhttp gives (2,000 generated requests)', () => {
    const rand = prng(1);
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const { head, body } = validRequest(rand);
      const at = compare(head + body + NEXT);
      expect(at, JSON.stringify(head)).toBe(head.length);
      accepted++;
    }
    expect(accepted).toBe(2000);
  });

  it('whatever it accepts of 20,000 mutated requests, llhttp accepts identically; the rest it hands over or waits for', () => {
    const rand = prng(2);
    const insert = ['\r', '\n', ' ', '\t', '\x00', ':', '\x7f', '\xff', ',', '"', 'Content-Length: 5\r\n', 'Transfer-Encoding: chunked\r\n', 'Host: b\r\n', ' x\r\n', '\r\n', 'HTTP/1.0', '%', '/', '#', '\\'];
    const counts = { accepted: 0, fallback: 0, incomplete: 0 };
    for (let i = 0; i < 20_000; i++) {
      const { head, body } = validRequest(rand);
      let text = head + body + NEXT;
      for (let m = 1 + Math.floor(rand() * 3); m > 0; m--) {
        const at = Math.floor(rand() * (head.length + 2));
        const kind = rand();
        if (kind < 0.5) text = text.slice(0, at) + insert[Math.floor(rand() * insert.length)] + text.slice(at);
        else if (kind < 0.8) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(rand() * 3));
        else text = text.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + text.slice(at + 1);
      }
      const result = compare(text);
      if (result > 0) counts.accepted++;
      else if (result === HEAD_FALLBACK) counts.fallback++;
      else counts.incomplete++;
    }
    // the mutations must exercise both sides, or the comparison proves little
    expect(counts.accepted).toBeGreaterThan(2000);
    expect(counts.fallback).toBeGreaterThan(5000);
  });

  it('a head cut anywhere is incomplete (or handed over), never accepted early', () => {
    const rand = prng(3);
    for (let i = 0; i < 300; i++) {
      const { head } = validRequest(rand);
      for (let cut = 0; cut < head.length; cut++) {
        const result = parseRequestHead(Buffer.from(head.slice(0, cut), 'latin1'), 0, new RequestHead());
        expect(result <= 0, `${JSON.stringify(head)} cut at ${cut}`).toBe(true);
      }
    }
  });

  it('hands over every smuggling shape and every head it does not handle, and accepts none', () => {
    const shapes = [
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3 4\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX: 1\rY\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX: 1\x00\r\n\r\n',
      'GET / HTTP/1.1\r\n Host: a\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
      'GET / HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.0\r\nHost: a\r\n\r\n',
      'GET /\nHTTP/1.1\r\nHost: a\r\n\r\n',
      'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n',
      'GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n',
      'GET * HTTP/1.1\r\nHost: a\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-secret\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n',
      '\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n',
      'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
      `GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`,
    ];
    for (const shape of shapes) expect(parseRequestHead(Buffer.from(shape, 'latin1'), 0, new RequestHead()), JSON.stringify(shape.slice(0, 120))).toBe(HEAD_FALLBACK);
    // and a head that grows past the limit without ending is handed over, not waited for
    expect(parseRequestHead(Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(MAX_HEAD_BYTES + 10)}`, 'latin1'), 0, new RequestHead())).toBe(HEAD_FALLBACK);
    expect(parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nX: 1', 'latin1'), 0, new RequestHead())).toBe(HEAD_INCOMPLETE);
  });

  it('parses pipelined heads from an offset, reusing one RequestHead', () => {
    const two = 'GET /one HTTP/1.1\r\nHost: a\r\n\r\nPOST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nbaggage: laneway=k\r\n\r\nhi';
    const buf = Buffer.from(two, 'latin1');
    const head = new RequestHead();
    const first = parseRequestHead(buf, 0, head);
    expect(head.target).toBe('/one');
    const second = parseRequestHead(buf, first, head);
    expect([head.method, head.target, head.body, head.contentLength, head.rawHeaders[5]]).toEqual(['POST', '/two', BODY_LENGTH, 2, 'laneway=k']);
    expect(two.slice(second)).toBe('hi');
  });
});
