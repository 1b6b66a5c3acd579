// Test helpers: one app behaviour served over HTTP/1.1 only or h2c only (no fallback to the other), and clients of both protocols.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type ClientHttp2Session, type Http2ServerRequest, type Http2ServerResponse, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

export const MB = 1024 * 1024;
/** 5 MiB of known bytes, sent in 64 KiB chunks */
export const BIG = 5 * MB;
const CHUNK = 64 * 1024;

export function chunkAt(i: number): Buffer {
  return Buffer.alloc(CHUNK, i % 251);
}
export const BIG_SHA = (() => {
  const h = createHash('sha256');
  for (let i = 0; i < BIG / CHUNK; i++) h.update(chunkAt(i));
  return h.digest('hex');
})();

export async function* bigBody(): AsyncGenerator<Buffer> {
  for (let i = 0; i < BIG / CHUNK; i++) yield chunkAt(i);
}

export interface ProtocolApp {
  readonly name: string;
  readonly port: number;
  readonly protocol: 'http1' | 'h2c';
  /** every request the app's handler saw: `${method} ${url} HTTP/${version}` */
  readonly seen: string[];
  /** the request headers the handler saw, by url */
  readonly headers: Map<string, Record<string, string | string[] | undefined>>;
  /** what the app noticed: `closed /hold`, … */
  readonly events: string[];
  /** HTTP/1.1 connections that sent something Node could not parse as HTTP/1.1 (an HTTP/2 preface probe) */
  readonly clientErrors: number;
  close(): Promise<void>;
}

type Req = IncomingMessage | Http2ServerRequest;
/** The calls the handler makes, which both response classes have (their union's overloads do not unify). */
type Res = {
  setHeader(name: string, value: string | string[]): unknown;
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: Buffer | string): boolean;
  end(chunk?: string): unknown;
  addTrailers(headers: Record<string, string>): void;
  once(event: string, listener: () => void): unknown;
} & ({ stream: Http2ServerResponse['stream'] } | { socket: ServerResponse['socket'] });

function handle(app: { name: string; seen: string[]; headers: ProtocolApp['headers']; events: string[] }, req: Req, res: Res): void {
  const url = req.url ?? '';
  app.seen.push(`${req.method} ${url} HTTP/${req.httpVersion}`);
  app.headers.set(url, { ...req.headers });
  const path = url.split('?')[0];
  res.setHeader('x-served-by', app.name);
  res.setHeader('x-app-protocol', `HTTP/${req.httpVersion}`);
  if (path === '/upload') {
    const h = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      h.update(c);
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ bytes, sha: h.digest('hex') }));
    });
    return;
  }
  if (path === '/download') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let i = 0;
    const pump = (): void => {
      while (i < BIG / CHUNK) {
        if (!res.write(chunkAt(i++))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  if (path === '/trailers') {
    req.resume();
    req.on('end', () => {
      const got = req.trailers['x-client-trailer'];
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-app-trailer, x-echo-trailer' });
      res.write('body before trailers');
      res.addTrailers({ 'x-app-trailer': 'done', 'x-echo-trailer': typeof got === 'string' ? got : 'none' });
      res.end();
    });
    return;
  }
  if (path === '/hold') {
    // Answers the head and a byte, then waits: the test's client goes away and the app must notice.
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('x');
    res.once('close', () => app.events.push(`closed ${url}`));
    return;
  }
  if (path === '/reset') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('partial body, then the upstream goes away');
    setTimeout(() => {
      if ('stream' in res) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      else (res as { socket: ServerResponse['socket'] }).socket?.destroy();
    }, 20);
    return;
  }
  if (path === '/nocontent') {
    req.resume();
    res.writeHead(204, {});
    res.end();
    return;
  }
  if (path === '/drop') {
    // Takes the request and goes away without a word: a request that may have reached the app.
    req.resume();
    if ('stream' in res) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    else (res as { socket: ServerResponse['socket'] }).socket?.destroy();
    return;
  }
  // /echo and anything else: what arrived, as JSON.
  let bytes = 0;
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end(JSON.stringify({ name: app.name, method: req.method, url, version: req.httpVersion, bytes, headers: req.headers }));
  });
}

/** An app on 127.0.0.1 speaking only `protocol`: an HTTP/1.1 server (Node answers an HTTP/2 preface with 400), or h2c without HTTP/1.1 fallback. */
export async function startProtocolApp(name: string, protocol: 'http1' | 'h2c', port = 0): Promise<ProtocolApp> {
  const state = { name, seen: [] as string[], headers: new Map<string, Record<string, string | string[] | undefined>>(), events: [] as string[], clientErrors: 0 };
  const onRequest = (req: Req, res: ServerResponse | Http2ServerResponse): void => handle(state, req, res as unknown as Res);
  const server = protocol === 'http1' ? createServer(onRequest) : http2.createServer(onRequest);
  const sessionsOf = new Set<import('node:http2').ServerHttp2Session>();
  if (protocol === 'h2c') {
    server.on('session', (s: import('node:http2').ServerHttp2Session) => {
      sessionsOf.add(s);
      s.once('close', () => sessionsOf.delete(s));
    });
  }
  if (protocol === 'http1') {
    server.on('clientError', (_err: Error, socket: import('node:net').Socket) => {
      state.clientErrors++;
      socket.destroy();
    });
  }
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const bound = (server.address() as { port: number }).port;
  return {
    name,
    port: bound,
    protocol,
    seen: state.seen,
    headers: state.headers,
    events: state.events,
    get clientErrors() {
      return state.clientErrors;
    },
    async close() {
      if ('closeAllConnections' in server) server.closeAllConnections();
      const closed = once(server, 'close');
      server.close();
      // An HTTP/2 server closes once its sessions have: end them, so the port is free when this resolves.
      if (!('closeAllConnections' in server)) for (const s of sessionsOf) s.destroy();
      await closed;
    },
  };
}

export interface Exchange {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  trailers: Record<string, string | string[] | undefined>;
}

export interface SendOptions {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** streamed without a content-length (chunked on HTTP/1.1) */
  body?: () => AsyncIterable<Buffer> | Readable;
  trailers?: Record<string, string>;
}

/** HTTP/1.1 client (Node's: it writes request trailers and reads response trailers). */
export function sendH1(port: number, opts: SendOptions): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('aborted', () => reject(new Error('response aborted')));
      res.on('error', reject);
      res.on('end', () => {
        if (!res.complete) reject(new Error('response incomplete'));
        else resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers });
      });
    });
    req.on('error', reject);
    void (async () => {
      if (opts.body !== undefined) {
        for await (const chunk of opts.body()) if (!req.write(chunk)) await once(req, 'drain');
      }
      if (opts.trailers !== undefined) req.addTrailers(opts.trailers);
      req.end();
    })().catch(reject);
  });
}

/** h2c (prior knowledge) client on one session. */
export function sendH2(session: ClientHttp2Session, opts: SendOptions): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const hasBody = opts.body !== undefined || opts.trailers !== undefined;
    const headers: OutgoingHttpHeaders = { ':method': opts.method ?? 'GET', ':path': opts.path, ...opts.headers };
    // endStream explicitly: Node's client ends GET and HEAD streams by itself otherwise.
    const stream = session.request(headers, hasBody ? { endStream: false, waitForTrailers: opts.trailers !== undefined } : { endStream: true });
    let status = 0;
    let resHeaders: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('close', () => {
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(new Error(`stream reset (code ${stream.rstCode})`));
      else resolve({ status, headers: resHeaders, body: Buffer.concat(chunks), trailers });
    });
    if (opts.trailers !== undefined) stream.once('wantTrailers', () => stream.sendTrailers(opts.trailers!));
    if (hasBody) {
      void (async () => {
        if (opts.body !== undefined) for await (const chunk of opts.body()) if (!stream.write(chunk)) await once(stream, 'drain');
        stream.end();
      })().catch(reject);
    }
  });
}
