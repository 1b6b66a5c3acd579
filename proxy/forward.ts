// HTTP/1.1 forwarding: route one request, dispatch it to a pooled upstream, stream the response back with backpressure.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { errorBody, SIDECAR_ERRORS, type SidecarErrorCode } from './errors.js';
import { checkFraming, dropConnectionListed, isHopByHopResponseHeader, requestProblem, scanHeaders, SLASH, type HeaderRules, type InboundHeaders } from './headers.js';
import { dropSandboxHeaders, FALLBACK_HEADER, mayFallBack, pushForwardingHeaders, upstreamFailure, upstreamFailureOf } from './outcome.js';
import { Decision, type Stats } from './metrics.js';
import { BASELINE, REFUSE, type Routed, type Router } from './router.js';
import type { CompiledRoute, Target } from '../model/route-table.js';
import type { Upstream, Upstreams } from './upstreams.js';
import { LaneRefusedError } from './lane-dial.js';
import { Capture } from './capture.js';
import type { Reporter } from './reporter.js';
import type { ActiveProbes } from './probes.js';
import type { CompiledCapture } from '../model/capture.js';

export interface ForwardContext {
  readonly rules: HeaderRules;
  readonly router: Router;
  readonly upstreams: Upstreams;
  readonly stats: Stats;
  readonly log: Logger;
  readonly fallbackToBaseline: boolean;
  /** time to the upstream's final response headers; 1xx responses do not extend it */
  readonly upstreamTimeoutMs: number;
  /** how long a request body may go without a byte from the client */
  readonly bodyTimeoutMs: number;
  /** requests one connection may have in flight before the sidecar stops reading it */
  readonly maxPipelined: number;
  /** null when access logging is off: resolved at startup, so the hot path pays one null check */
  readonly accessLog: ((handler: ProxyHandler) => void) | null;
  /** app port → the end of the `laneway-fork` value (`@<workload>:<port>`, after the routing key), built once */
  readonly forkOf: ReadonlyMap<number, string>;
  readonly workload: string;
  /** where captured exchanges go; null without a control plane (capture is then off) */
  readonly reporter: Reporter | null;
  /** the propagation doctor's probes; null without a control plane */
  readonly probes: ActiveProbes | null;
  readonly routingKeyName: string;
}

const kHandler = Symbol('laneway.handler');
type TrackedResponse = ServerResponse & { [kHandler]?: ProxyHandler };
type TrackedRequest = IncomingMessage & { [kHandler]?: ProxyHandler };

/**
 * Requests parsed on one connection but not yet forwarded, past which the connection is closed. Node
 * parses a whole read before the first response is written, so this bounds what one read of
 * pipelined requests can queue (a 64 KiB read holds about 2,500 minimal requests).
 */
export const PIPELINE_QUEUE_LIMIT = 4096;


class ClientGoneError extends Error {
  readonly code = 'LANEWAY_CLIENT_ABORTED';
}
const CLIENT_GONE = new ClientGoneError('client closed the connection');

/** What undici reports when its own headers timeout fires: the same code maps to the same 504. */
class InterimTimeoutError extends Error {
  readonly code = 'UND_ERR_HEADERS_TIMEOUT';
}

/** Shared timer callback (no per-request closure): interim responses kept coming, the final one did not. */
function onInterimDeadline(handler: ProxyHandler): void {
  handler.interimTimedOut();
}

/**
 * One proxied request: the undici dispatch handler and the routing outcome in one object, so a
 * request allocates this, its header list and little else. Uses undici's (legacy) raw-header
 * callbacks: they are what its HTTP/1 client calls natively; the newer controller API wraps them in
 * an extra object and parses the headers into an object we would only flatten again.
 */
export class ProxyHandler implements Routed, Dispatcher.DispatchHandler {
  route: CompiledRoute | undefined = undefined;
  target: Target | undefined = undefined;
  error: SidecarErrorCode | undefined = undefined;
  fellBack = false;
  statusCode = 0;
  /** set only when access logging is on: a clock read per request is not free */
  startedAt = 0;
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #done = false;
  #closed = false;
  #drainHooked = false;
  /** armed by the first 1xx: undici restarts its headers timer on each one, so a 102 flood would never time out */
  #interimDeadline: NodeJS.Timeout | null = null;
  /** this connection's pipelining state (null for a request not counted against it) */
  pipeline: Pipeline | null = null;
  /** set only for a sandbox that asked for capture */
  capture: Capture | null = null;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly #ctx: ForwardContext;
  readonly #opts: Dispatcher.DispatchOptions;

  constructor(ctx: ForwardContext, req: IncomingMessage, res: ServerResponse, inbound: InboundHeaders) {
    this.#ctx = ctx;
    this.req = req;
    this.res = res;
    this.#opts = {
      path: req.url as string,
      method: req.method as Dispatcher.HttpMethod,
      headers: inbound.forward,
      body: inbound.hasBody ? req : null,
    };
  }

  dispatch(pool: Upstream): void {
    try {
      pool.dispatch(this.#opts, this);
    } catch (err) {
      // undici validates what Node's parser let through (e.g. an absolute-form or `*` target).
      this.#ctx.log.debug({ err }, 'request refused by the upstream client');
      this.fail('LANEWAY_ERR_BAD_REQUEST');
    }
  }

  // --- undici handler callbacks -------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.#done) abort(CLIENT_GONE);
    else this.#abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null, resume: () => void, statusText: string): boolean {
    // 1xx: `100 Continue` was already sent by Node; other interim responses are not relayed.
    if (statusCode < 200) {
      this.#interimDeadline ??= setTimeout(onInterimDeadline, this.#ctx.upstreamTimeoutMs, this);
      return true;
    }
    this.#clearInterimDeadline();
    this.#resume = resume;
    this.statusCode = statusCode;
    const headers: string[] = [];
    let connection: string | undefined;
    if (rawHeaders !== null) {
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i]!.toString('latin1');
        if (isHopByHopResponseHeader(name)) {
          if (name.length === 10 && (name === 'connection' || name.toLowerCase() === 'connection')) connection = rawHeaders[i + 1]!.toString('latin1');
          continue;
        }
        headers.push(name, rawHeaders[i + 1]!.toString('latin1'));
      }
    }
    // Headers the upstream declared hop-by-hop in its `Connection` go no further (RFC 9110 §7.6.1).
    if (connection !== undefined) dropConnectionListed(connection, headers);
    if (this.capture !== null) this.capture.responseHeaders = headers;
    if (this.route !== undefined) headers.push('laneway-sandbox', this.route.sandbox);
    else if (this.fellBack) headers.push(FALLBACK_HEADER, '1');
    if (statusText) this.res.writeHead(statusCode, statusText, headers);
    else this.res.writeHead(statusCode, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.capture !== null) this.capture.responseBody?.push(chunk);
    if (this.res.write(chunk)) return true;
    // Client is slower than the upstream: pause the upstream socket until the client drains.
    if (!this.#drainHooked) {
      this.#drainHooked = true;
      this.res.on('drain', onResponseDrain);
    }
    return false;
  }

  interimTimedOut(): void {
    this.#interimDeadline = null;
    if (this.#done || this.statusCode !== 0 || this.#abort === null) return;
    this.#abort(new InterimTimeoutError(`no final response within ${this.#ctx.upstreamTimeoutMs} ms (interim responses only)`));
  }

  #clearInterimDeadline(): void {
    if (this.#interimDeadline === null) return;
    clearTimeout(this.#interimDeadline);
    this.#interimDeadline = null;
  }

  /** The client sent no byte of the request body for --body-timeout. */
  bodyTimedOut(): void {
    const abort = this.#abort;
    if (this.res.headersSent || this.#done) {
      this.res.destroy();
    } else {
      this.#ctx.log.debug({ path: this.req.url }, 'request body stalled; answering 408');
      this.res.shouldKeepAlive = false; // the rest of the body would be read as the next request
      this.fail('LANEWAY_ERR_REQUEST_TIMEOUT');
    }
    if (abort !== null) abort(CLIENT_GONE);
  }

  /** undici's resume belongs to the upstream connection, which serves other requests after ours: only resume while ours runs. */
  resumeUpstream(): void {
    if (!this.#done && this.#resume !== null) this.#resume();
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    if (trailers !== null && trailers.length > 0) {
      const pairs: [string, string][] = [];
      for (let i = 0; i < trailers.length; i += 2) pairs.push([trailers[i]!.toString('latin1'), trailers[i + 1]!.toString('latin1')]);
      this.res.addTrailers(pairs);
    }
    this.#done = true;
    this.#clearInterimDeadline();
    this.res.end();
    if (this.capture !== null) this.#captured(this.statusCode, undefined);
    this.#count(this.route !== undefined ? Decision.sandbox : this.fellBack ? Decision.fallback : Decision.baseline);
  }

  /** Starts recording this exchange (its sandbox asked for capture); the request body is tapped as undici reads it. */
  startCapture(rule: CompiledCapture, target: Target): void {
    const capture = new Capture(
      rule,
      { sandbox: this.route!.sandbox, workload: this.#ctx.workload, protocol: 'http1', method: this.req.method as string, path: this.req.url as string, target: target.address },
      this.#opts.headers as string[],
    );
    this.capture = capture;
    const tap = capture.requestBody;
    if (tap !== null && this.#opts.body !== null) {
      // undici resumes the body itself when it starts sending; pausing keeps our listener from starting the flow early.
      this.req.on('data', (chunk: Buffer) => tap.push(chunk));
      this.req.pause();
    }
  }

  #captured(status: number, error: string | undefined): void {
    const record = this.capture!.finish(status, error);
    this.capture = null;
    this.#ctx.reporter!.exchange(record);
  }

  onError(err: Error): void {
    this.#clearInterimDeadline();
    if (this.#done) return;
    const code = (err as { code?: string }).code ?? '';
    const sandbox = this.route !== undefined;
    if (this.res.headersSent) {
      // Mid-response failure: the only honest signal left is closing the client connection.
      this.#done = true;
      if (this.capture !== null) this.#captured(this.statusCode, upstreamFailure(sandbox, false));
      this.#ctx.stats.upstreamError(upstreamFailure(sandbox, false));
      this.res.destroy(err);
      return;
    }
    if (err instanceof LaneRefusedError) {
      // The relay's own answer (lane disconnected, busy, the laptop's service down): the client gets it as the relay wrote it.
      this.#ctx.stats.upstreamError(upstreamFailure(sandbox, false));
      this.#passOn(err);
      return;
    }
    if (mayFallBack(this.#ctx.fallbackToBaseline, sandbox, code, this.req.readableDidRead)) {
      this.#ctx.log.warn({ sandbox: this.route!.sandbox, target: this.target?.address, code }, 'sandbox unreachable; falling back to baseline');
      this.route = undefined;
      this.fellBack = true;
      this.#abort = null;
      dropSandboxHeaders(this.#opts.headers as string[]);
      this.dispatch(this.#ctx.upstreams.baseline(this.appPort));
      return;
    }
    const errorCode = upstreamFailureOf(sandbox, code);
    this.#ctx.stats.upstreamError(errorCode);
    this.#ctx.log.debug({ code, message: err.message, sandbox: this.route?.sandbox }, 'upstream request failed');
    this.fail(errorCode);
  }

  // --- client side ---------------------------------------------------------------------------

  appPort = 0;

  /** Answers the client with the sidecar's JSON error; `laneway-error` names the code. */
  fail(code: SidecarErrorCode): void {
    if (this.#done) return;
    this.#done = true;
    this.error = code;
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      res.destroy();
    } else {
      const body = errorBody(code, this.route?.sandbox, this.target?.address);
      this.statusCode = SIDECAR_ERRORS[code].status;
      const headers: string[] = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body)), 'laneway-error', code];
      if (this.route !== undefined) headers.push('laneway-sandbox', this.route.sandbox);
      res.writeHead(this.statusCode, headers);
      res.end(body);
    }
    if (this.capture !== null) this.#captured(this.statusCode, code);
    this.#count(Decision.error);
  }

  /** Answers with a lane relay's refusal: its status, code and JSON body. */
  #passOn(refusal: LaneRefusedError): void {
    this.#done = true;
    this.error = 'LANEWAY_ERR_SANDBOX_UNREACHABLE';
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      res.destroy();
    } else {
      this.statusCode = refusal.status;
      const headers: string[] = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(refusal.body)), 'laneway-error', refusal.code];
      if (this.route !== undefined) headers.push('laneway-sandbox', this.route.sandbox);
      res.writeHead(refusal.status, headers);
      res.end(refusal.body);
    }
    if (this.capture !== null) this.#captured(refusal.status, refusal.code);
    this.#count(Decision.error);
  }

  /** The response closed: finished normally, or the client went away and the upstream request is aborted. */
  responseClosed(finished: boolean): void {
    // Node emits `close` only for the response attached to the socket; Pipeline calls this for the others.
    if (this.#closed) return;
    this.#closed = true;
    this.#ctx.stats.inFlight--;
    this.#clearInterimDeadline();
    if (this.pipeline !== null) this.pipeline.done(this);
    if (finished || this.#done) return;
    this.#done = true;
    if (this.capture !== null) this.#captured(0, CLIENT_GONE.code);
    if (this.#abort !== null) this.#abort(CLIENT_GONE);
  }

  #count(decision: number): void {
    this.#ctx.stats.requests[decision]!++;
    if (this.#ctx.accessLog !== null) this.#ctx.accessLog(this);
  }
}

/**
 * Shared `drain` listener (no per-request closure). The resume waits a tick: `drain` can fire while
 * another undici parser is running (a pipelined response is attached to the socket as the one before
 * it completes), and undici asserts that no parser is running when one is resumed.
 */
function onResponseDrain(this: TrackedResponse): void {
  const handler = this[kHandler];
  if (handler !== undefined) process.nextTick(resumeUpstreamLater, handler);
}

function resumeUpstreamLater(handler: ProxyHandler): void {
  handler.resumeUpstream();
}

/** Shared `close` listener (no per-request closure): the handler hangs off the response. */
function onResponseClose(this: TrackedResponse): void {
  this[kHandler]?.responseClosed(this.writableFinished);
}

/** Shared request `timeout` listener: Node emits it on the request whose body is incomplete when the socket idles. */
function onBodyIdle(this: TrackedRequest): void {
  this[kHandler]?.bodyTimedOut();
}

/** The body arrived: the socket's idle timer goes back to Node (keep-alive) unless the response already set it. */
function onBodyEnd(this: TrackedRequest): void {
  const handler = this[kHandler];
  if (handler !== undefined && !handler.res.writableFinished) this.socket?.setTimeout(0);
}

const kPipeline = Symbol('laneway.pipeline');
type PipelinedSocket = Socket & { [kPipeline]?: Pipeline };

interface Waiting {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly appPort: number;
}

/**
 * One HTTP/1 connection's pipelining state. A client that pipelines without reading would otherwise
 * have every parsed request forwarded and every response buffered in the sidecar: at most
 * `maxPipelined` requests are in flight; the rest wait, unforwarded, and the socket is not read
 * until responses drain (the kernel's buffers then push back on the client).
 */
class Pipeline {
  readonly inFlight: ProxyHandler[] = [];
  readonly waiting: Waiting[] = [];
  paused = false;
  closed = false;
  readonly #socket: Socket;
  readonly #forwarder: Forwarder;
  readonly #max: number;

  constructor(socket: Socket, forwarder: Forwarder, max: number) {
    this.#socket = socket;
    this.#forwarder = forwarder;
    this.#max = max;
  }

  /** False when the request must wait (or the connection was closed for queuing too many). */
  admit(req: IncomingMessage, res: ServerResponse, appPort: number): boolean {
    if (this.inFlight.length < this.#max && this.waiting.length === 0) return true;
    if (this.waiting.length >= PIPELINE_QUEUE_LIMIT) {
      this.#socket.destroy();
      return false;
    }
    this.waiting.push({ req, res, appPort });
    this.paused = true;
    this.#socket.pause(); // again each time: reading a request body elsewhere may have resumed it
    return false;
  }

  done(handler: ProxyHandler): void {
    const at = this.inFlight.indexOf(handler);
    if (at !== -1) this.inFlight.splice(at, 1);
    if (this.closed) return;
    while (this.waiting.length > 0 && this.inFlight.length < this.#max) {
      const next = this.waiting.shift()!;
      this.#forwarder.forward(next.req, next.res, next.appPort, this);
    }
    if (this.paused && this.waiting.length === 0) {
      this.paused = false;
      this.#socket.resume();
    }
  }

  /** The connection closed: responses Node never attached to it get no `close` of their own. */
  close(): void {
    this.closed = true;
    this.waiting.length = 0;
    for (const handler of this.inFlight.slice()) handler.responseClosed(false);
  }
}

function onPipelinedSocketClose(this: PipelinedSocket): void {
  this[kPipeline]?.close();
}

export class Forwarder {
  readonly #ctx: ForwardContext;

  constructor(ctx: ForwardContext) {
    this.#ctx = ctx;
  }

  handle(req: IncomingMessage, res: ServerResponse, appPort: number): void {
    const socket = req.socket as PipelinedSocket;
    let pipeline = socket[kPipeline];
    if (pipeline === undefined) {
      pipeline = socket[kPipeline] = new Pipeline(socket, this, this.#ctx.maxPipelined);
      socket.once('close', onPipelinedSocketClose);
    }
    if (pipeline.admit(req, res, appPort)) this.forward(req, res, appPort, pipeline);
  }

  /** Routes and forwards one request (now, or when its turn on a pipelined connection comes). */
  forward(req: IncomingMessage, res: ServerResponse, appPort: number, pipeline: Pipeline): void {
    const ctx = this.#ctx;
    const inbound = scanHeaders(req.rawHeaders, ctx.rules);
    const handler = new ProxyHandler(ctx, req, res, inbound);
    if (ctx.accessLog !== null) handler.startedAt = performance.now();
    ctx.stats.inFlight++;
    handler.appPort = appPort;
    handler.pipeline = pipeline;
    pipeline.inFlight.push(handler);
    (res as TrackedResponse)[kHandler] = handler;
    res.on('close', onResponseClose);
    res.sendDate = false; // relay the upstream's response untouched
    if (inbound.hasBody && !req.complete) {
      // A stalled body would hold the request (and the upstream's) forever: bound its idleness.
      (req as TrackedRequest)[kHandler] = handler;
      req.socket.setTimeout(ctx.bodyTimeoutMs);
      req.once('timeout', onBodyIdle);
      req.once('end', onBodyEnd);
    }

    checkFraming(inbound, req.httpVersionMinor);
    // Only origin-form targets are forwarded: one char tells the usual request apart (see requestProblem).
    if (inbound.problem !== undefined || (req.url as string).charCodeAt(0) !== SLASH) {
      handler.fail(requestProblem(req.url as string, inbound) as SidecarErrorCode);
      return;
    }
    if (ctx.probes !== null && ctx.probes.active) ctx.probes.observe(inbound.routingKey(ctx.routingKeyName), req);
    const decision = ctx.router.decide(inbound, appPort, handler);
    if (decision === REFUSE) {
      handler.fail(handler.error as SidecarErrorCode);
      return;
    }
    if (decision === BASELINE) {
      pushForwardingHeaders(inbound.forward, req.socket.remoteAddress, inbound, null);
      handler.dispatch(ctx.upstreams.baseline(appPort));
      return;
    }
    const fork = handler.route!.key + ctx.forkOf.get(appPort)!;
    const target = handler.target as Target;
    pushForwardingHeaders(inbound.forward, req.socket.remoteAddress, inbound, fork);
    const capture = handler.route!.capture;
    if (capture !== undefined && ctx.reporter !== null) handler.startCapture(capture, target);
    handler.dispatch(target.lane ? ctx.upstreams.lane(target, fork) : ctx.upstreams.sandbox(target, appPort));
  }
}
