// HTTP/2 → HTTP/1.1 translation: relays one h2c stream as an HTTP/1.1 request to an app or fork that speaks only HTTP/1.1, and the response back.
import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import http2, { type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { SidecarErrorCode } from './errors.js';
import { FALLBACK_HEADER, upstreamFailureOf } from './outcome.js';
import { isHttp1ParseError } from './protocol-memo.js';

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** Response headers that describe the HTTP/1.1 connection, not the message (RFC 9113 §8.2.2): never sent on a stream. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);
/** Trailer fields that would change framing or routing if they arrived late (RFC 9110 §6.5.1). */
const NOT_IN_TRAILERS = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'content-type', 'content-encoding', ':status']);

/** One HTTP/2 stream to relay, with what the HTTP/2 forwarder (h2.ts) decided about it. */
export interface RelayJob {
  readonly stream: ServerHttp2Stream;
  /** the request headers to forward: pseudo-headers, the client's headers without HTTP/2's hop-by-hop set, and ours */
  readonly out: OutgoingHttpHeaders;
  readonly endStream: boolean;
  readonly host: string;
  readonly port: number;
  /** `laneway-sandbox` on the response (a sandbox path), else undefined */
  readonly sandbox: string | undefined;
  readonly fellBack: boolean;
  readonly agent: Agent;
  readonly connectTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  /** set before the sidecar itself resets the client's stream (the rapid-reset guard counts only the client's resets) */
  readonly ours: { reset: boolean };
  /** the exchange is over; `responded`: the upstream's response headers reached the client */
  finish(responded: boolean): void;
  /**
   * The upstream could not be reached and nothing of the request was consumed: true when the caller took the
   * request elsewhere (`--fallback baseline`); otherwise it is answered with `fail`.
   */
  unreachable(code: string, bodyConsumed: boolean): boolean;
  /** answer the client with the sidecar's error (nothing was relayed yet) */
  fail(code: SidecarErrorCode): void;
  /** `auto`: the upstream answered in something other than HTTP/1.1 (what was learned no longer holds); null otherwise */
  readonly mismatch: (() => void) | null;
}

/** Relays `job`: HEADERS → request line, Host and fields (cookies joined); DATA → a content-length or chunked body; trailers both ways. */
export function relayToHttp1(job: RelayJob): void {
  const { stream, out } = job;
  const headers: string[] = [];
  for (const name in out) {
    if (name.charCodeAt(0) === 0x3a) continue; // pseudo-headers become the request line and Host
    const value = out[name];
    if (value === undefined || name === 'te') continue; // HTTP/2 allows only `te: trailers`, meaningless to an HTTP/1.1 hop
    // RFC 9113 §8.2.3: cookie crumbs are joined with "; " for an HTTP/1.1 hop (one Cookie line).
    if (name === 'cookie' && Array.isArray(value)) headers.push(name, value.join('; '));
    else if (Array.isArray(value)) for (const v of value) headers.push(name, v);
    else headers.push(name, String(value));
  }
  const authority = out[':authority'];
  headers.push('host', authority === undefined ? `${job.host}:${job.port}` : String(authority));
  // A body without content-length is framed chunked, whatever the method: Node would otherwise send a GET's
  // body unframed, and the app would read it as the next request on the connection. Chunked also carries trailers.
  if (!job.endStream && out['content-length'] === undefined) headers.push('transfer-encoding', 'chunked');
  const path = String(out[':path']);
  // Origin-form only, as on the HTTP/1.1 listener (headers.ts requestProblem).
  if (path.charCodeAt(0) !== 0x2f) {
    job.fail('LANEWAY_ERR_BAD_REQUEST');
    return;
  }
  let upstream: ClientRequest;
  try {
    upstream = httpRequest({ host: job.host.replace(/^\[|\]$/g, ''), port: job.port, method: String(out[':method']), path, headers, setHost: false, agent: job.agent });
  } catch {
    // HTTP/2 lets through bytes HTTP/1.1 forbids (control characters in values, spaces in :path): Node refuses to write them.
    job.fail('LANEWAY_ERR_BAD_REQUEST');
    return;
  }

  let connected = false;
  let responded = false;
  let done = false;
  const deadline = setTimeout(() => {
    if (!responded) upstream.destroy(Object.assign(new Error(`no response within ${job.upstreamTimeoutMs} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
  }, job.upstreamTimeoutMs);
  const end = (): void => {
    if (done) return;
    done = true;
    clearTimeout(deadline);
    job.finish(responded);
  };
  const reset = (): void => {
    if (stream.closed) return;
    job.ours.reset = true;
    stream.close(NGHTTP2_INTERNAL_ERROR);
  };

  const sendBody = (): void => {
    if (job.endStream) {
      upstream.end();
      return;
    }
    stream.once('trailers', (trailers) => {
      const pairs: [string, string][] = [];
      for (const name in trailers) {
        const value = trailers[name];
        if (value !== undefined && !NOT_IN_TRAILERS.has(name)) pairs.push([name, Array.isArray(value) ? value.join(', ') : String(value)]);
      }
      // Sent only on a chunked body (RFC 9112 §7.1.2); with a content-length there is no place for them.
      if (pairs.length > 0) upstream.addTrailers(pairs);
    });
    stream.pipe(upstream);
  };
  upstream.once('socket', (socket: Socket) => {
    if (!socket.connecting) {
      connected = true;
      sendBody();
      return;
    }
    socket.setTimeout(job.connectTimeoutMs);
    const onTimeout = (): void => {
      if (!connected) upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    };
    socket.once('timeout', onTimeout);
    // The body is read only once connected: an unreachable sandbox has consumed nothing (--fallback baseline).
    socket.once('connect', () => {
      connected = true;
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
      sendBody();
    });
  });

  upstream.once('response', (res: IncomingMessage) => {
    responded = true;
    clearTimeout(deadline);
    if (stream.destroyed || stream.closed) {
      res.destroy();
      return;
    }
    const headersOut: OutgoingHttpHeaders = { ':status': res.statusCode ?? 502 };
    const listed = res.headers.connection;
    for (const name in res.headers) {
      if (HOP_BY_HOP.has(name)) continue;
      headersOut[name] = res.headers[name];
    }
    // Headers the upstream declared hop-by-hop in its `Connection` go no further (RFC 9110 §7.6.1).
    if (listed !== undefined) for (const token of listed.toLowerCase().split(',')) delete headersOut[token.trim()];
    headersOut[':status'] = res.statusCode ?? 502;
    if (job.sandbox !== undefined) headersOut['laneway-sandbox'] = job.sandbox;
    else if (job.fellBack) headersOut[FALLBACK_HEADER] = '1';
    stream.respond(headersOut, { waitForTrailers: true });
    stream.once('wantTrailers', () => {
      const trailers: OutgoingHttpHeaders = {};
      for (const name in res.trailers) if (!NOT_IN_TRAILERS.has(name)) trailers[name] = res.trailers[name];
      stream.sendTrailers(trailers);
    });
    res.pipe(stream);
    res.once('end', end);
    res.once('close', () => {
      if (res.complete) return;
      // The upstream connection closed before the body's end: reset the client's stream, never end it cleanly.
      reset();
      end();
    });
  });

  upstream.on('error', (err: Error & { code?: string }) => {
    if (done) return;
    if (responded) {
      reset();
      end();
      return;
    }
    if (stream.destroyed || stream.closed) {
      end();
      return;
    }
    const code = err.code ?? '';
    if (job.mismatch !== null && isHttp1ParseError(err)) job.mismatch();
    if (!connected && job.unreachable(code, stream.readableDidRead)) {
      done = true;
      clearTimeout(deadline);
      return;
    }
    done = true;
    clearTimeout(deadline);
    job.fail(upstreamFailureOf(job.sandbox !== undefined, code));
  });

  // The client reset the stream or went away: abort the upstream request, so the app sees its connection close.
  stream.once('close', () => {
    if (!done && !upstream.destroyed) {
      upstream.destroy();
      end();
    }
  });
}
