// HTTP/1.1 → HTTP/2 translation: an undici-style dispatcher that sends an HTTP/1.1 request as an h2c stream, for apps and forks that speak only HTTP/2.
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import type { ProxyHandler } from './forward.js';
import { connectedSessions, settledSessions, timedOut, type SessionPool } from './h2.js';
import { isGrpcContentType } from './protocols.js';
import type { Stats } from './metrics.js';

const { NGHTTP2_CANCEL } = http2.constants;

/**
 * Request headers an HTTP/2 request must not carry (RFC 9113 §8.2.2) or that become pseudo-headers. The
 * scan (headers.ts) already dropped the hop-by-hop ones and those `Connection` lists; these are what is
 * left that HTTP/1.1 allows and HTTP/2 does not. `te` is re-added as `te: trailers` when the client asked.
 */
const NOT_IN_H2 = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te', 'host']);
/** Trailer fields that would change framing or routing if they arrived late (RFC 9110 §6.5.1). */
const NOT_IN_TRAILERS = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'content-type', 'content-encoding']);

/** An upstream failure as the forwarder's outcome (outcome.ts) reads it: by `code`. */
export class TranslatedUpstreamError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export interface H2DispatcherOptions {
  readonly host: string;
  readonly port: number;
  /** time to the upstream's final response headers */
  readonly upstreamTimeoutMs: number;
  /** `auto`: a stream failed unanswered on a session whose peer never sent SETTINGS (it does not speak HTTP/2 now) */
  readonly onNotH2?: () => void;
}

/**
 * Dispatches the forwarder's requests (forward.ts ProxyHandler) to an h2c upstream, calling the same
 * handler callbacks undici's HTTP/1 pool calls, so routing, fallback, errors and metrics stay the
 * forwarder's: this class only changes the wire protocol. Streams share one pooled session per upstream.
 */
export class H2Dispatcher {
  readonly #sessions: SessionPool;
  readonly #options: H2DispatcherOptions;
  readonly #stats: Stats;
  readonly #authority: string;

  constructor(sessions: SessionPool, options: H2DispatcherOptions, stats: Stats) {
    this.#sessions = sessions;
    this.#options = options;
    this.#stats = stats;
    this.#authority = `${options.host}:${options.port}`;
  }

  dispatch(opts: Dispatcher.DispatchOptions, handler: ProxyHandler): boolean {
    const req = handler.req;
    if (isGrpcContentType(req.headers['content-type'])) {
      // gRPC carries its status in trailers and needs HTTP/2 end to end: refuse rather than degrade it.
      handler.fail('LANEWAY_ERR_GRPC_NEEDS_HTTP2');
      return true;
    }
    this.#stats.translated[0]!++;
    new H1ToH2Exchange(this, opts, handler).start();
    return true;
  }

  /** @internal */
  get sessions(): SessionPool {
    return this.#sessions;
  }
  /** @internal */
  get options(): H2DispatcherOptions {
    return this.#options;
  }
  /** @internal `host` of a request that had none (HTTP/1.0) */
  get authority(): string {
    return this.#authority;
  }
}

/** One translated request: HTTP/1.1 head → HEADERS, body → DATA, client trailers → trailing HEADERS; and the response back. */
class H1ToH2Exchange {
  readonly #dispatcher: H2Dispatcher;
  readonly #opts: Dispatcher.DispatchOptions;
  readonly #handler: ProxyHandler;
  #stream: ClientHttp2Stream | null = null;
  #abortError: Error | null = null;
  #responded = false;
  #settled = false;
  #deadlinePassed = false;
  #deadline: NodeJS.Timeout | null = null;
  #trailers: string[] | null = null;

  constructor(dispatcher: H2Dispatcher, opts: Dispatcher.DispatchOptions, handler: ProxyHandler) {
    this.#dispatcher = dispatcher;
    this.#opts = opts;
    this.#handler = handler;
  }

  start(): void {
    const handler = this.#handler;
    handler.onConnect(this.#abort);
    if (this.#abortError !== null) {
      this.#settle(this.#abortError);
      return;
    }
    const { sessions, options } = this.#dispatcher;
    const session = sessions.get(options.host, options.port);
    const body = this.#opts.body as NodeJS.ReadableStream | null;
    let stream: ClientHttp2Stream;
    try {
      // endStream explicitly: Node's client otherwise ends a GET's or HEAD's stream at once, and its body is lost.
      stream = session.request(this.#requestHeaders(), body === null ? { endStream: true } : { endStream: false, waitForTrailers: true });
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (code.startsWith('ERR_HTTP2_INVALID') || code.startsWith('ERR_INVALID')) {
        // A header HTTP/1.1 allows and HTTP/2 cannot carry: the client's request, not the upstream, is at fault.
        this.#settled = true;
        handler.fail('LANEWAY_ERR_BAD_REQUEST');
        return;
      }
      this.#settle(new TranslatedUpstreamError(connectedSessions.has(session) ? 'UND_ERR_SOCKET' : 'ECONNREFUSED', 'the HTTP/2 session to the upstream is closing'));
      return;
    }
    this.#stream = stream;
    this.#deadline = setTimeout(this.#onDeadline, options.upstreamTimeoutMs);
    stream.on('error', noop);
    stream.once('response', this.#onResponse);
    stream.once('trailers', this.#onTrailers);
    stream.once('end', this.#onEnd);
    stream.once('close', () => {
      if (this.#settled) return;
      if (this.#abortError !== null) return this.#settle(this.#abortError);
      if (this.#responded) return this.#settle(new TranslatedUpstreamError('UND_ERR_SOCKET', `the upstream reset the HTTP/2 stream (code ${stream.rstCode})`));
      if (!settledSessions.has(session)) this.#dispatcher.options.onNotH2?.();
      // Never answered: a session that never connected is the connect phase (safe for --fallback baseline).
      const code = this.#deadlinePassed ? 'UND_ERR_HEADERS_TIMEOUT' : !connectedSessions.has(session) ? (timedOut.has(session) ? 'UND_ERR_CONNECT_TIMEOUT' : 'ECONNREFUSED') : 'UND_ERR_SOCKET';
      this.#settle(new TranslatedUpstreamError(code, 'the HTTP/2 upstream closed the stream before answering'));
    });
    if (body !== null) {
      const source = body as unknown as IncomingMessage;
      stream.once('wantTrailers', () => stream.sendTrailers(trailersOf(source.rawTrailers)));
      // Read the body only once connected: until then an unreachable sandbox has consumed nothing of it.
      const pipe = (): void => {
        if (!stream.closed) source.pipe(stream);
      };
      if (connectedSessions.has(session)) pipe();
      else session.once('connect', pipe);
    }
  }

  #requestHeaders(): OutgoingHttpHeaders {
    const opts = this.#opts;
    const out: OutgoingHttpHeaders = { ':method': opts.method, ':scheme': 'http', ':path': opts.path };
    const raw = opts.headers as string[];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      if (name === 'host') {
        out[':authority'] = value;
        continue;
      }
      if (NOT_IN_H2.has(name)) continue;
      const previous = out[name];
      if (previous === undefined) out[name] = value;
      else if (Array.isArray(previous)) previous.push(value);
      else out[name] = [String(previous), value];
    }
    out[':authority'] ??= this.#dispatcher.authority;
    // `te: trailers` is the one TE an HTTP/2 request may carry (RFC 9113 §8.2.2); gRPC-style apps check it.
    const te = this.#handler.req.headers.te;
    if (te !== undefined && String(te).toLowerCase().includes('trailers')) out.te = 'trailers';
    return out;
  }

  readonly #abort = (err?: Error): void => {
    if (this.#settled || this.#abortError !== null) return;
    this.#abortError = err ?? new TranslatedUpstreamError('UND_ERR_ABORTED', 'aborted');
    // RST_STREAM(CANCEL): the app sees its request aborted, as an HTTP/1.1 app sees the connection close.
    const stream = this.#stream;
    if (stream !== null && !stream.closed) stream.close(NGHTTP2_CANCEL);
  };

  readonly #onDeadline = (): void => {
    this.#deadline = null;
    if (this.#responded) return;
    this.#deadlinePassed = true;
    this.#stream?.close(NGHTTP2_CANCEL);
  };

  readonly #onResponse = (headers: IncomingHttpHeaders): void => {
    if (this.#settled || this.#abortError !== null) return;
    this.#responded = true;
    this.#clearDeadline();
    const raw: string[] = [];
    for (const name in headers) {
      if (name.charCodeAt(0) === 0x3a) continue; // :status
      const value = headers[name];
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) raw.push(name, v);
      else raw.push(name, String(value));
    }
    const stream = this.#stream!;
    this.#handler.onHeaders(Number(headers[':status']), raw, this.#resume, '');
    stream.on('data', this.#onData);
  };

  readonly #onData = (chunk: Buffer): void => {
    if (!this.#handler.onData(chunk)) this.#stream!.pause();
  };

  readonly #resume = (): void => {
    this.#stream?.resume();
  };

  readonly #onTrailers = (headers: IncomingHttpHeaders): void => {
    const raw: string[] = [];
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || name.charCodeAt(0) === 0x3a) continue;
      if (Array.isArray(value)) for (const v of value) raw.push(name, v);
      else raw.push(name, String(value));
    }
    this.#trailers = raw;
  };

  readonly #onEnd = (): void => {
    if (this.#settled || !this.#responded) return;
    this.#settled = true;
    this.#clearDeadline();
    this.#handler.onComplete(this.#trailers);
  };

  #settle(err: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#clearDeadline();
    this.#handler.onError(err);
  }

  #clearDeadline(): void {
    if (this.#deadline === null) return;
    clearTimeout(this.#deadline);
    this.#deadline = null;
  }
}

function noop(): void {}

/** An HTTP/1.1 request's trailers (`rawTrailers`) as HTTP/2 trailing headers. */
function trailersOf(raw: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (NOT_IN_TRAILERS.has(name)) continue;
    const previous = out[name];
    out[name] = previous === undefined ? raw[i + 1]! : `${String(previous)}, ${raw[i + 1]!}`;
  }
  return out;
}
