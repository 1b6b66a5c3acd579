// HTTP/2 cleartext (h2c) and gRPC: route each stream by baggage, forward over pooled HTTP/2 sessions, keep trailers and resets.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type Http2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { connect } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { errorBody, SIDECAR_ERRORS, type SidecarErrorCode } from './errors.js';
import { FORK_HEADER } from '../core/constants.js';
import { HOPS_HEADER, InboundHeaders, MAX_REQUEST_HEADER_BYTES, type HeaderRules } from './headers.js';
import { Capture } from './capture.js';
import type { Reporter } from './reporter.js';
import { FALLBACK_HEADER, mayFallBack, setH2ForwardingHeaders, upstreamFailure, upstreamFailureOf } from './outcome.js';
import { Decision, type Stats } from './metrics.js';
import { REFUSE, SANDBOX, type Router, type Routed } from './router.js';
import type { Target } from '../model/route-table.js';
import type { Upstreams } from './upstreams.js';
import { relayToHttp1 } from './h2-to-h1.js';
import type { ProtocolMemo } from './protocol-memo.js';
import { AS_CLIENT, AUTO, HTTP1, targetProtocol, type UpstreamProtocol } from './protocols.js';

const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

/**
 * Rapid reset (CVE-2023-44487): a client that opens streams and resets them at once makes the sidecar
 * forward each one while never counting against the concurrent-stream limit. As Envoy does, once a
 * connection has opened H2_RESET_MIN_STREAMS streams and at least H2_RESET_MAX_SHARE of them were reset
 * by the client within H2_PREMATURE_RESET_MS of opening, the connection is closed with
 * ENHANCE_YOUR_CALM. Ordinary cancellations (a share, or later in a stream's life) never trip it.
 */
export const H2_RESET_MIN_STREAMS = 100;
export const H2_RESET_MAX_SHARE = 0.5;
export const H2_PREMATURE_RESET_MS = 1000;

/** Per client connection: streams open (for the idle timer) and the rapid-reset tally. */
class SessionGuard {
  open = 0;
  streams = 0;
  prematureResets = 0;
  flooded = false;
}
const kGuard = Symbol('laneway.h2guard');
type GuardedSession = Http2Session & { [kGuard]?: SessionGuard };

/** Shared idle-timer callback: an idle connection is closed (GOAWAY); one already closing but stuck is destroyed. */
function onSessionIdle(this: GuardedSession): void {
  if (this.destroyed) return;
  if (this.closed) this.destroy();
  else if ((this[kGuard]?.open ?? 0) === 0) this.close();
}

/** The client said GOAWAY: it opens no more streams, so finish the open ones and release the socket. */
function onPeerGoaway(this: Http2Session): void {
  if (!this.closed && !this.destroyed) this.close();
}

/** Sessions our connect timer destroyed: their streams fail with a timeout code, not "unreachable". */
export const timedOut = new WeakSet<ClientHttp2Session>();
/** Sessions that completed the connection: a stream failing on any other never reached its upstream (connect phase). */
export const connectedSessions = new WeakSet<ClientHttp2Session>();
/** Sessions whose peer sent its SETTINGS: it speaks HTTP/2 (a session failing before that met something else, `auto` relearns). */
export const settledSessions = new WeakSet<ClientHttp2Session>();

/** gRPC status codes we produce (grpc/doc/statuscodes.md). */
const GRPC_UNAVAILABLE = '14';
const GRPC_DEADLINE_EXCEEDED = '4';
const GRPC_INTERNAL = '13';
const GRPC_RESOURCE_EXHAUSTED = '8';

const NO_ROUTE: Routed = Object.freeze({ route: undefined, target: undefined, error: undefined }) as Routed;

/** Headers an HTTP/2 proxy must not copy between connections (RFC 9113 §8.2.2) or that we set ourselves. */
const DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'host', HOPS_HEADER, FORK_HEADER]);

export interface H2Options {
  readonly appHost: string;
  readonly connectTimeoutMs: number;
  readonly maxSessions: number;
  /** per stream: time to the upstream's response headers */
  readonly upstreamTimeoutMs: number;
  /** a client connection with no stream open and no frame for this long is closed */
  readonly idleTimeoutMs: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients */
  readonly maxStreams: number;
}

export interface H2Context {
  readonly rules: HeaderRules;
  readonly router: Router;
  readonly stats: Stats;
  readonly log: Logger;
  readonly fallbackToBaseline: boolean;
  /** app port → the end of the `laneway-fork` value (`@<workload>:<port>`) */
  readonly forkOf: ReadonlyMap<number, string>;
  readonly workload: string;
  /** where captured exchanges go; null without a control plane */
  readonly reporter: Reporter | null;
  /** the HTTP/1.1 agent and the `auto` memos, for streams translated to HTTP/1.1 */
  readonly upstreams: Upstreams;
}

/** One multiplexed HTTP/2 session per upstream origin; replaced when it closes or receives GOAWAY. */
export class SessionPool {
  readonly #sessions: LRUCache<string, ClientHttp2Session>;
  readonly #connectTimeoutMs: number;

  constructor(max: number, connectTimeoutMs: number) {
    this.#connectTimeoutMs = connectTimeoutMs;
    this.#sessions = new LRUCache<string, ClientHttp2Session>({
      max,
      dispose: (session) => {
        if (!session.closed) session.close();
      },
    });
  }

  get(host: string, port: number): ClientHttp2Session {
    const origin = `${host}:${port}`;
    const existing = this.#sessions.get(origin);
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    const bareHost = host.replace(/^\[|\]$/g, '');
    const session = http2.connect(`http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`, {
      createConnection: () => connect({ host: bareHost, port, noDelay: true }),
    });
    const timer = setTimeout(() => {
      timedOut.add(session);
      session.destroy(Object.assign(new Error(`connect timeout after ${this.#connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, this.#connectTimeoutMs);
    session.once('connect', () => {
      clearTimeout(timer);
      connectedSessions.add(session);
    });
    session.once('remoteSettings', () => settledSessions.add(session));
    const forget = (): void => {
      clearTimeout(timer);
      if (this.#sessions.peek(origin) === session) this.#sessions.delete(origin);
    };
    // GOAWAY: streams already open finish on this session; new ones get a fresh session.
    session.once('goaway', forget);
    session.once('close', forget);
    session.on('error', forget);
    this.#sessions.set(origin, session);
    return session;
  }

  close(): void {
    for (const session of this.#sessions.values()) session.close();
    this.#sessions.clear();
  }
}

export class H2Forwarder {
  readonly server: http2.Http2Server;
  readonly #ctx: H2Context;
  readonly #options: H2Options;
  readonly #pool: SessionPool;
  /** this listener's app port protocol, resolved at startup (`--port …/<protocol>`) */
  readonly #protocol: UpstreamProtocol;
  inFlight = 0;

  constructor(ctx: H2Context, options: H2Options, appPort: number, protocol: UpstreamProtocol = AS_CLIENT) {
    this.#ctx = ctx;
    this.#options = options;
    this.#protocol = protocol;
    this.#pool = new SessionPool(options.maxSessions, options.connectTimeoutMs);
    // Streams past the limit are refused by nghttp2 (RST_STREAM REFUSED_STREAM) before they reach us.
    this.server = http2.createServer({ settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: options.maxStreams } });
    this.server.on('session', (session: GuardedSession) => {
      session[kGuard] = new SessionGuard();
      session.setTimeout(options.idleTimeoutMs, onSessionIdle);
      session.once('goaway', onPeerGoaway);
    });
    this.server.on('stream', (stream, headers, flags) => this.#handle(stream, headers, flags, appPort));
    this.server.on('sessionError', () => {});
  }

  /** Counts one stream on its connection and watches for a client reset before we finished. */
  #guardStream(stream: ServerHttp2Stream, guard: SessionGuard, ours: { reset: boolean }): void {
    guard.open++;
    guard.streams++;
    const openedAt = performance.now();
    // `aborted` is emitted while nghttp2 is still reading the batch, unlike `close`: a flood is seen before the rest of it is forwarded.
    stream.once('aborted', () => {
      if (ours.reset || stream.rstCode === NGHTTP2_NO_ERROR || performance.now() - openedAt > H2_PREMATURE_RESET_MS) return;
      guard.prematureResets++;
      if (guard.flooded || guard.streams < H2_RESET_MIN_STREAMS || guard.prematureResets < guard.streams * H2_RESET_MAX_SHARE) return;
      guard.flooded = true;
      this.#ctx.stats.h2ResetFloods++;
      const session = stream.session;
      this.#ctx.log.warn({ peer: session?.socket?.remoteAddress, streams: guard.streams, resets: guard.prematureResets }, 'HTTP/2 rapid reset: closing the connection');
      session?.destroy(new Error('HTTP/2 rapid reset'), NGHTTP2_ENHANCE_YOUR_CALM);
    });
    stream.once('close', () => guard.open--);
  }

  #handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, appPort: number): void {
    const ctx = this.#ctx;
    stream.on('error', () => {});
    const guard = (stream.session as GuardedSession | undefined)?.[kGuard];
    if (guard?.flooded) {
      stream.close(NGHTTP2_REFUSED_STREAM);
      return;
    }
    const ours = { reset: false };
    if (guard !== undefined) this.#guardStream(stream, guard, ours);
    const grpc = String(headers['content-type'] ?? '').startsWith('application/grpc');
    const inbound = new InboundHeaders();
    const out: OutgoingHttpHeaders = {};
    let headerBytes = 0;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      headerBytes += name.length + 32 + (typeof value === 'string' ? value.length : value.join(', ').length);
      if (DROP.has(name)) continue;
      out[name] = value;
    }
    if (headerBytes > MAX_REQUEST_HEADER_BYTES) {
      this.#fail(stream, NO_ROUTE, 'LANEWAY_ERR_HEADERS_TOO_LARGE', grpc);
      return;
    }
    const str = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(',') : v);
    inbound.baggage = str(headers.baggage);
    inbound.tracestate = str(headers.tracestate);
    inbound.otBaggage = str(headers[`ot-baggage-${ctx.rules.keyName.toLowerCase()}`]);
    inbound.uberctx = str(headers[`uberctx-${ctx.rules.keyName.toLowerCase()}`]);
    const hops = Number(str(headers[HOPS_HEADER]));
    inbound.hops = Number.isInteger(hops) && hops > 0 ? hops : 0;

    const routed: Routed = { route: undefined, target: undefined, error: undefined };
    const decision = ctx.router.decide(inbound, appPort, routed);
    if (decision === REFUSE) {
      this.#fail(stream, routed, routed.error as SidecarErrorCode, grpc);
      return;
    }
    setH2ForwardingHeaders(
      out,
      { xff: str(headers['x-forwarded-for']), forwarded: str(headers.forwarded), via: str(headers.via) },
      stream.session?.socket?.remoteAddress,
      inbound.hops,
      decision === SANDBOX ? routed.route!.key + ctx.forkOf.get(appPort)! : null,
    );
    this.#dispatch(stream, out, (flags & NGHTTP2_FLAG_END_STREAM) !== 0, appPort, routed, decision === SANDBOX, false, grpc, ours);
  }

  /** Opens the upstream stream (sandbox, baseline, or baseline after a fallback) and relays both ways. */
  #dispatch(stream: ServerHttp2Stream, out: OutgoingHttpHeaders, endStream: boolean, appPort: number, routed: Routed, sandbox: boolean, fellBack: boolean, grpc: boolean, ours: { reset: boolean }, probed = false): void {
    const ctx = this.#ctx;
    const target = routed.target as Target | undefined;
    // The upstream's protocol: one compare for a port without translation (AS_CLIENT and no fork scheme).
    // A local lane's relay is dialled as the client spoke (its tunnel reaches a laptop whose protocol nobody declared).
    let protocol = sandbox ? (target!.lane ? AS_CLIENT : targetProtocol(target!, this.#protocol)) : this.#protocol;
    let memo: ProtocolMemo | null = null;
    if (protocol !== AS_CLIENT) {
      if (protocol === AUTO) {
        memo = ctx.upstreams.memos.get(sandbox ? target!.host : this.#options.appHost, sandbox ? target!.port : appPort);
        if (memo.learned === AS_CLIENT && !probed) {
          // Nothing is sent before the probe ends, so the request goes exactly once, in the learned protocol.
          void memo.probe().then(() => {
            if (!stream.destroyed && !stream.closed) this.#dispatch(stream, out, endStream, appPort, routed, sandbox, fellBack, grpc, ours, true);
          });
          return;
        }
        protocol = memo.learned;
      }
      if (protocol === HTTP1) {
        this.#relayToHttp1(stream, out, endStream, appPort, routed, sandbox, fellBack, grpc, ours, memo);
        return;
      }
    }
    const session = sandbox ? this.#pool.get(target!.host, target!.port) : this.#pool.get(this.#options.appHost, appPort);
    let upstream: ClientHttp2Stream;
    try {
      upstream = session.request(out, { endStream });
    } catch {
      this.#fail(stream, routed, upstreamFailure(sandbox, false), grpc);
      return;
    }
    this.inFlight++;
    // Capture (the sandbox asked for it): headers, status, trailers and time; bodies are HTTP/1.1's only.
    const rule = sandbox ? routed.route!.capture : undefined;
    let capture: Capture | null = null;
    let captureStatus = 0;
    let captureError: string | undefined;
    if (rule !== undefined && ctx.reporter !== null) {
      capture = new Capture(
        rule,
        { sandbox: routed.route!.sandbox, workload: ctx.workload, protocol: 'h2', method: String(out[':method']), path: String(out[':path']), target: target!.address },
        h2Pairs(out),
        false,
      );
    }
    let responded = false;
    let finished = false;
    let deadlinePassed = false;
    // A deadline, not an idle timer: interim (1xx) HEADERS frames must not extend it.
    const deadline = setTimeout(() => {
      if (responded) return;
      deadlinePassed = true;
      upstream.close(NGHTTP2_CANCEL);
    }, this.#options.upstreamTimeoutMs);
    const finish = (decisionIndex: number): void => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      this.inFlight--;
      ctx.stats.h2Requests[decisionIndex]!++;
      if (capture !== null) {
        const record = capture.finish(captureStatus, captureError ?? (decisionIndex === Decision.error ? 'LANEWAY_ERR_SANDBOX_UNREACHABLE' : undefined));
        ctx.reporter!.exchange(record);
        capture = null;
      }
    };

    upstream.on('response', (resHeaders, resFlags) => {
      responded = true;
      clearTimeout(deadline);
      const headersOut: OutgoingHttpHeaders = {};
      for (const name in resHeaders) {
        if (!DROP.has(name)) headersOut[name] = resHeaders[name];
      }
      if (sandbox) headersOut['laneway-sandbox'] = routed.route!.sandbox;
      else if (fellBack) headersOut[FALLBACK_HEADER] = '1';
      if (capture !== null) {
        captureStatus = Number(resHeaders[':status']);
        capture.responseHeaders = h2Pairs(headersOut);
      }
      if (stream.destroyed) return;
      if ((resFlags & NGHTTP2_FLAG_END_STREAM) !== 0) {
        // Trailers-only response (how gRPC reports most errors): status lives in these headers.
        stream.respond(headersOut, { endStream: true });
        return;
      }
      stream.respond(headersOut, { waitForTrailers: true });
      upstream.pipe(stream);
    });
    let trailers: OutgoingHttpHeaders | null = null;
    upstream.on('trailers', (t) => {
      trailers = {};
      for (const name in t) trailers[name] = t[name];
      // gRPC's status is in the trailers: the record keeps them with the response headers.
      if (capture !== null) capture.responseHeaders = [...capture.responseHeaders, ...h2Pairs(trailers)];
    });
    // No upstream trailers: end the stream with empty ones (a DATA frame with END_STREAM). Closing it
    // with RST_STREAM(NO_ERROR) instead left clients whose request body ended in a DATA frame waiting
    // forever for the end of the response.
    const onWantTrailers = (): void => {
      stream.sendTrailers(trailers ?? {});
    };
    stream.on('wantTrailers', onWantTrailers);
    // The body is read only once the upstream is connected: until then it stays in the client's stream,
    // so an unreachable sandbox has consumed nothing and --fallback baseline can send all of it.
    const pipeBody = (): void => {
      stream.pipe(upstream);
    };
    if (!endStream) {
      if (connectedSessions.has(session)) pipeBody();
      else session.once('connect', pipeBody);
    }

    // Client cancelled (RST_STREAM) or went away: cancel upstream too, so the server sees it.
    const onClientClose = (): void => {
      if (!upstream.closed) upstream.close(stream.rstCode && stream.rstCode !== NGHTTP2_NO_ERROR ? stream.rstCode : NGHTTP2_CANCEL);
    };
    upstream.on('close', () => {
      const code = upstream.rstCode ?? NGHTTP2_NO_ERROR;
      if (!responded) {
        if (stream.destroyed || stream.closed) {
          finish(Decision.error);
          return;
        }
        // Never reached the upstream (connect failure, refused stream): answer promptly, never hang.
        const neverConnected = !connectedSessions.has(session);
        // `auto` learned h2c, but the upstream no longer says SETTINGS (or refuses): learn again on the next request.
        if (memo !== null && !settledSessions.has(session)) memo.forget();
        const failure = deadlinePassed ? 'ETIMEDOUT' : neverConnected ? (timedOut.has(session) ? 'UND_ERR_CONNECT_TIMEOUT' : 'ECONNREFUSED') : '';
        if (neverConnected && mayFallBack(ctx.fallbackToBaseline, sandbox, failure, stream.readableDidRead)) {
          ctx.log.warn({ sandbox: routed.route?.sandbox, target: target?.address }, 'sandbox unreachable; falling back to baseline');
          clearTimeout(deadline);
          finished = true;
          this.inFlight--;
          stream.off('wantTrailers', onWantTrailers);
          stream.off('close', onClientClose);
          session.off('connect', pipeBody);
          delete out[HOPS_HEADER];
          delete out[FORK_HEADER];
          this.#dispatch(stream, out, endStream, appPort, NO_ROUTE, false, true, grpc, ours);
          return;
        }
        const errorCode = upstreamFailureOf(sandbox, failure);
        ctx.stats.upstreamError(errorCode);
        this.#fail(stream, routed, errorCode, grpc);
        captureError = errorCode;
        captureStatus = grpc ? 200 : SIDECAR_ERRORS[errorCode].status;
        finish(Decision.error);
        return;
      }
      if (code !== NGHTTP2_NO_ERROR && !stream.closed) {
        ours.reset = true;
        stream.close(code); // upstream reset → reset the client stream
      }
      finish(sandbox ? Decision.sandbox : fellBack ? Decision.fallback : Decision.baseline);
    });
    upstream.on('error', () => {});
    stream.on('close', onClientClose);
  }

  /** An HTTP/1.1-only upstream: the stream is translated (h2-to-h1.ts); routing, fallback, errors and counters stay here. */
  #relayToHttp1(stream: ServerHttp2Stream, out: OutgoingHttpHeaders, endStream: boolean, appPort: number, routed: Routed, sandbox: boolean, fellBack: boolean, grpc: boolean, ours: { reset: boolean }, memo: ProtocolMemo | null): void {
    const ctx = this.#ctx;
    if (grpc) {
      // gRPC's status travels in trailers and its framing assumes HTTP/2: never translated.
      this.#fail(stream, routed, 'LANEWAY_ERR_GRPC_NEEDS_HTTP2', grpc);
      return;
    }
    const target = routed.target as Target | undefined;
    ctx.stats.translated[1]!++;
    this.inFlight++;
    relayToHttp1({
      stream,
      out,
      endStream,
      host: sandbox ? target!.host : this.#options.appHost,
      port: sandbox ? target!.port : appPort,
      sandbox: sandbox ? routed.route!.sandbox : undefined,
      fellBack,
      agent: ctx.upstreams.http1Agent,
      connectTimeoutMs: this.#options.connectTimeoutMs,
      upstreamTimeoutMs: this.#options.upstreamTimeoutMs,
      ours,
      finish: (responded) => {
        this.inFlight--;
        ctx.stats.h2Requests[responded ? (sandbox ? Decision.sandbox : fellBack ? Decision.fallback : Decision.baseline) : Decision.error]!++;
      },
      mismatch: memo === null ? null : () => memo.forget(),
      unreachable: (code, bodyConsumed) => {
        if (memo !== null) memo.forget();
        if (!mayFallBack(ctx.fallbackToBaseline, sandbox, code, bodyConsumed)) return false;
        ctx.log.warn({ sandbox: routed.route?.sandbox, target: target?.address, code }, 'sandbox unreachable; falling back to baseline');
        this.inFlight--;
        delete out[HOPS_HEADER];
        delete out[FORK_HEADER];
        this.#dispatch(stream, out, endStream, appPort, NO_ROUTE, false, true, grpc, ours);
        return true;
      },
      fail: (code) => {
        this.inFlight--;
        ctx.stats.upstreamError(code);
        this.#fail(stream, routed, code, grpc);
      },
    });
  }

  #fail(stream: ServerHttp2Stream, routed: Routed, code: SidecarErrorCode, grpc: boolean): void {
    if (stream.destroyed || stream.closed || stream.headersSent) {
      if (!stream.destroyed && !stream.closed) stream.close(NGHTTP2_CANCEL);
      return;
    }
    const target = routed.target?.address;
    const headers: OutgoingHttpHeaders = { 'laneway-error': code };
    if (routed.route !== undefined) headers['laneway-sandbox'] = routed.route.sandbox;
    if (grpc) {
      // gRPC clients read the status from a trailers-only response; HTTP 200 is what the protocol requires.
      const status = code.endsWith('TIMEOUT')
        ? GRPC_DEADLINE_EXCEEDED
        : code === 'LANEWAY_ERR_HEADERS_TOO_LARGE'
          ? GRPC_RESOURCE_EXHAUSTED
          : code === 'LANEWAY_ERR_LOOP_DETECTED' || code === 'LANEWAY_ERR_BAD_REQUEST' ? GRPC_INTERNAL : GRPC_UNAVAILABLE;
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': status, 'grpc-message': encodeURIComponent(`${code}: ${SIDECAR_ERRORS[code].message}${target ? ` (${target})` : ''}`), ...headers },
        { endStream: true },
      );
    } else {
      const body = errorBody(code, routed.route?.sandbox, target);
      stream.respond({ ':status': SIDECAR_ERRORS[code].status, 'content-type': 'application/json', ...headers });
      stream.end(body);
    }
    this.#ctx.stats.h2Requests[Decision.error]!++;
  }

  close(): void {
    this.#pool.close();
    this.server.close();
  }
}

/** HTTP/2 headers as the capture's `[name, value, …]` list (pseudo-headers kept: `:path`, `:status` say what happened). */
function h2Pairs(headers: OutgoingHttpHeaders): string[] {
  const pairs: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    pairs.push(name, Array.isArray(value) ? value.join(', ') : String(value));
  }
  return pairs;
}
