// The lane relay: laptops hold one outbound tunnel each (HTTP/2 over an upgraded connection, relay as client); sidecars' connections and requests for a local fork arrive here and go down that tunnel.
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import {
  connect as h2connect,
  constants,
  createServer as createH2Server,
  type ClientHttp2Session,
  type Http2Server,
  type IncomingHttpHeaders as H2Headers,
  type ServerHttp2Stream,
} from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { FORK_HEADER, ERROR_HEADER } from '../core/constants.js';
import { relayH2 } from '../core/h2-bridge.js';
import { CONTROL_PLANE_ERRORS, type ControlPlaneErrorCode } from '../model/api-errors.js';
import {
  EXPOSE_HEADER,
  EXPOSE_STANDBY_STREAMS,
  LANE_KIND_HEADER,
  LANE_MAX_STREAMS,
  LANE_PING_INTERVAL_MS,
  LANE_RESPONSE_TIMEOUT_MS,
  LANE_SESSION_HEADER,
  LANE_SESSION_RE,
  LANE_UPGRADE,
  LOCAL_TARGET,
  parseForkHeader,
} from '../model/lanes.js';
import type { TargetHealth } from './probe.js';
import type { SandboxRecord } from './storage.js';
import { parseHostPort } from '../model/route-table.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_CONNECT_ERROR } = constants;

/** Why an exposure target may not be reached (the target policy), or null when it may. */
export type ExposePolicy = (host: string, port: number) => string | null;

/** Tunnels one relay holds at most (one per connected sandbox); more laptops are refused with 503. */
export const MAX_LANES = 1000;

/** What the relay needs to know about sandboxes: the registry's view. */
export interface LaneDirectory {
  byKey(key: string): SandboxRecord | undefined;
  get(name: string): SandboxRecord | undefined;
}

class Tunnel {
  readonly sandbox: string;
  /** identifies the sandbox's incarnation: a re-created sandbox of the same name is another lane */
  readonly createdAt: number;
  readonly owner: string;
  readonly session: ClientHttp2Session;
  readonly since = Date.now();
  /** streams open on the tunnel for sidecars: CONNECT tunnels, HTTP/2 requests, upgrades (standby exposure streams not counted) */
  inFlight = 0;
  /** exposure streams open (standby or in use), at most LANE_MAX_STREAMS */
  exposing = 0;

  /** Opens a stream for one request, or undefined when the lane carries LANE_MAX_STREAMS already (nghttp2 would queue without bound). */
  open(headers: Record<string, string | string[] | number | undefined>, options?: { endStream?: boolean }): ReturnType<ClientHttp2Session['request']> | undefined {
    if (this.inFlight >= LANE_MAX_STREAMS) return undefined;
    const stream = this.session.request(headers, options);
    this.inFlight++;
    stream.once('close', () => this.inFlight--);
    return stream;
  }

  constructor(sandbox: string, createdAt: number, owner: string, session: ClientHttp2Session) {
    this.sandbox = sandbox;
    this.createdAt = createdAt;
    this.owner = owner;
    this.session = session;
  }
}

const DISCONNECTED: TargetHealth = Object.freeze({ ready: false, reason: 'local lane not connected (run laneway connect)', checkedAt: null });

function digest(session: string): string {
  return createHash('sha256').update(session).digest('hex');
}

/** A control-plane error as the sidecar's own errors look: JSON body, `laneway-error` header. */
function errorBody(code: ControlPlaneErrorCode, message: string = CONTROL_PLANE_ERRORS[code].message, sandbox?: string): string {
  return JSON.stringify({ error: { code, message, ...(sandbox === undefined ? {} : { sandbox }) } });
}

/** Answers a raw socket (an upgrade we refuse) with a JSON error and closes it. */
export function refuseSocket(socket: Duplex, code: ControlPlaneErrorCode, message?: string, extra = ''): void {
  const body = errorBody(code, message);
  const status = CONTROL_PLANE_ERRORS[code].status;
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 ${status} ${status < 500 ? 'Refused' : 'Unavailable'}\r\ncontent-type: application/json; charset=utf-8\r\n${ERROR_HEADER}: ${code}\r\n${extra}` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export class LaneRelay {
  readonly #directory: LaneDirectory;
  readonly #log: FastifyBaseLogger;
  /** sandbox name → its connected tunnel */
  readonly #tunnels = new Map<string, Tunnel>();
  /** `<sandbox>#<createdAt>` → sha256 of the session that owns the lane (kept across disconnects) */
  readonly #owners = new Map<string, string>();
  readonly #front: NetServer;
  readonly #http1: HttpServer;
  readonly #h2: Http2Server;
  readonly #sockets = new Set<Socket>();
  readonly #exposePolicy: ExposePolicy;

  constructor(directory: LaneDirectory, log: FastifyBaseLogger, exposePolicy: ExposePolicy) {
    this.#directory = directory;
    this.#log = log;
    this.#exposePolicy = exposePolicy;
    this.#http1 = createHttpServer({ keepAliveTimeout: 60_000, requestTimeout: 0 }, (req, res) => this.#onRequest(req, res));
    this.#http1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.#http1.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onConnect(req, socket, head));
    this.#http1.emit('listening'); // connection tracking (timeouts) starts on 'listening'; sockets come from #front
    this.#h2 = createH2Server({ settings: { maxConcurrentStreams: LANE_MAX_STREAMS } });
    this.#h2.on('stream', (stream, headers) => this.#onStream(stream, headers));
    // Sidecars send HTTP/1.1 and h2c (prior knowledge) to the same port: the preface tells them apart.
    this.#front = createNetServer({ noDelay: true }, (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.once('readable', () => {
        const chunk = socket.read(3) as Buffer | null;
        if (chunk === null) return void socket.destroy();
        socket.unshift(chunk);
        (chunk.toString('latin1') === 'PRI' ? this.#h2 : this.#http1).emit('connection', socket);
      });
      socket.on('error', () => {});
    });
  }

  /** Starts the sidecar-facing listener; resolves with its bound address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#front.once('error', reject);
      this.#front.listen(port, host, () => resolve(this.#front.address() as AddressInfo));
    });
  }

  get connected(): number {
    return this.#tunnels.size;
  }

  /** The health of a sandbox's local fork targets, for its phase. */
  health(record: SandboxRecord): TargetHealth {
    const tunnel = this.#tunnels.get(record.name);
    if (tunnel === undefined || tunnel.createdAt !== record.createdAt) return DISCONNECTED;
    return { ready: true, reason: null, checkedAt: Date.now() };
  }

  /**
   * A laptop's tunnel request (already authenticated as a writer by the caller): checks the
   * sandbox, its local forks and the session's ownership, answers 101 and takes the socket.
   */
  attach(sandbox: string, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const record = this.#directory.get(sandbox);
    if (record === undefined) return refuseSocket(socket, 'LANEWAY_ERR_SANDBOX_NOT_FOUND', `sandbox ${sandbox} does not exist`);
    if (!record.spec.forks.some((f) => Object.values(f.targets).includes(LOCAL_TARGET))) {
      return refuseSocket(socket, 'LANEWAY_ERR_LANE_NOT_LOCAL', `sandbox ${sandbox} has no local fork (a target "${LOCAL_TARGET}")`);
    }
    const session = req.headers[LANE_SESSION_HEADER];
    if (typeof session !== 'string' || !LANE_SESSION_RE.test(session)) {
      return refuseSocket(socket, 'LANEWAY_ERR_INVALID_FIELD', `${LANE_SESSION_HEADER}: must be 22-128 characters of A-Z a-z 0-9 _ -`);
    }
    const lane = `${sandbox}#${record.createdAt}`;
    const owner = digest(session);
    const held = this.#owners.get(lane);
    if (held !== undefined && held !== owner) return refuseSocket(socket, 'LANEWAY_ERR_LANE_TAKEN', `another laneway connect holds the lane of sandbox ${sandbox}`);
    const previous = this.#tunnels.get(sandbox);
    if (previous === undefined && this.#tunnels.size >= MAX_LANES) return refuseSocket(socket, 'LANEWAY_ERR_LANE_BUSY', `this relay holds ${MAX_LANES} lanes`);
    this.#owners.set(lane, owner);

    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${LANE_UPGRADE}\r\n\r\n`);
    if (head.length > 0) socket.unshift(head);
    (socket as Socket).setNoDelay?.(true);
    const h2session = h2connect(`http://lane.${sandbox}`, { createConnection: () => socket, settings: { enablePush: false } });
    h2session.on('error', () => {});
    const tunnel = new Tunnel(sandbox, record.createdAt, owner, h2session);
    // The same laptop reconnecting (its old connection not yet noticed dead) replaces its tunnel.
    previous?.session.destroy();
    this.#tunnels.set(sandbox, tunnel);
    this.#log.info({ sandbox }, 'local lane connected');
    h2session.once('remoteSettings', () => {
      for (let i = 0; i < EXPOSE_STANDBY_STREAMS; i++) this.#standby(tunnel);
    });
    const ping = setInterval(() => {
      const sent = h2session.ping((err) => {
        if (err !== null && !h2session.destroyed) h2session.destroy();
      });
      if (!sent) h2session.destroy();
    }, LANE_PING_INTERVAL_MS);
    ping.unref();
    h2session.once('close', () => {
      clearInterval(ping);
      if (this.#tunnels.get(sandbox) === tunnel) {
        this.#tunnels.delete(sandbox);
        this.#log.info({ sandbox }, 'local lane disconnected');
      }
    });
  }

  /**
   * One idle CONNECT stream the laptop can answer when its local service calls an exposure: the
   * answer names the target; the relay checks it against the target policy, connects and relays
   * bytes. Replaced as soon as it is used, so the laptop always has some to take.
   */
  #standby(tunnel: Tunnel): void {
    const session = tunnel.session;
    // A local service opening connections without bound gets LANE_MAX_STREAMS of them; the rest wait (EXPOSE_WAIT_MS) and close.
    if (session.destroyed || session.closed || tunnel.exposing >= LANE_MAX_STREAMS) return;
    let stream;
    try {
      stream = session.request({ ':method': 'CONNECT', ':authority': 'expose', [LANE_KIND_HEADER]: 'expose' });
    } catch {
      return;
    }
    tunnel.exposing++;
    stream.once('close', () => {
      tunnel.exposing--;
      // Capacity came back while the laptop had none left on standby: offer one again.
      if (tunnel.exposing < EXPOSE_STANDBY_STREAMS) this.#standby(tunnel);
    });
    stream.on('error', () => {});
    stream.once('response', (headers) => {
      this.#standby(tunnel);
      const requested = String(headers[EXPOSE_HEADER] ?? '');
      const target = parseHostPort(requested);
      const refusal = target === undefined ? 'not host:port' : this.#exposePolicy(target.host.replace(/^\[|\]$/g, ''), target.port);
      if (target === undefined || refusal !== null) {
        this.#log.warn({ sandbox: tunnel.sandbox, target: requested, reason: refusal }, 'exposure refused');
        return void stream.close(NGHTTP2_REFUSED_STREAM);
      }
      const socket = netConnect({ host: target.host.replace(/^\[|\]$/g, ''), port: target.port });
      socket.setNoDelay(true);
      socket.once('connect', () => {
        stream.pipe(socket);
        socket.pipe(stream);
      });
      socket.on('error', () => {
        if (!stream.destroyed) stream.close(NGHTTP2_CONNECT_ERROR);
      });
      socket.on('close', () => {
        if (!stream.destroyed) stream.end();
      });
      stream.on('close', () => socket.destroy());
    });
  }

  /** `laneway connect` ended on purpose (Ctrl-C) or the sandbox went away: forget its owner and close its tunnel. */
  release(sandbox: string): void {
    for (const lane of this.#owners.keys()) if (lane.startsWith(`${sandbox}#`)) this.#owners.delete(lane);
    this.#tunnels.get(sandbox)?.session.destroy();
  }

  close(): void {
    for (const tunnel of this.#tunnels.values()) tunnel.session.destroy();
    this.#front.close();
    for (const socket of this.#sockets) socket.destroy();
  }

  /** The tunnel for a request a sidecar sent to a local fork, or the error to answer. */
  #resolve(forkHeader: string | string[] | undefined): { tunnel: Tunnel; fork: string } | { error: ControlPlaneErrorCode; message?: string; sandbox?: string } {
    const fork = parseForkHeader(forkHeader);
    if (fork === undefined) return { error: 'LANEWAY_ERR_LANE_NOT_LOCAL', message: `no valid ${FORK_HEADER} header (only sidecars send requests here)` };
    const record = this.#directory.byKey(fork.key);
    const target = record?.spec.forks.find((f) => f.workload === fork.workload)?.targets[fork.port];
    if (record === undefined || target !== LOCAL_TARGET) {
      return { error: 'LANEWAY_ERR_LANE_NOT_LOCAL', message: `no sandbox forks ${fork.workload} port ${fork.port} locally for this key` };
    }
    const tunnel = this.#tunnels.get(record.name);
    if (tunnel === undefined || tunnel.createdAt !== record.createdAt || tunnel.session.destroyed) {
      return { error: 'LANEWAY_ERR_LANE_DISCONNECTED', sandbox: record.name };
    }
    return { tunnel, fork: forkHeader as string };
  }

  /** Sidecars reach local forks with CONNECT (HTTP/1.1), h2c streams and upgrades; a plain request is not one of them. */
  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const lane = this.#resolve(req.headers[FORK_HEADER]);
    if ('error' in lane) return fail(res, lane.error, lane.message, lane.sandbox);
    fail(res, 'LANEWAY_ERR_LANE_NOT_LOCAL', 'HTTP/1.1 requests reach a local fork through a CONNECT tunnel (only sidecars send requests here)');
  }

  #onStream(inbound: ServerHttp2Stream, headers: H2Headers): void {
    const lane = this.#resolve(headers[FORK_HEADER]);
    if ('error' in lane) return failStream(inbound, lane.error, lane.message, lane.sandbox);
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = value;
    out[LANE_KIND_HEADER] = 'h2';
    let outbound;
    try {
      outbound = lane.tunnel.open(out, { endStream: inbound.endAfterHeaders });
    } catch {
      return failStream(inbound, 'LANEWAY_ERR_LANE_DISCONNECTED', undefined, lane.tunnel.sandbox);
    }
    if (outbound === undefined) return failStream(inbound, 'LANEWAY_ERR_LANE_BUSY', undefined, lane.tunnel.sandbox);
    const sandbox = lane.tunnel.sandbox;
    relayH2(inbound, outbound, LANE_RESPONSE_TIMEOUT_MS, (reason) =>
      failStream(inbound, outbound.rstCode === NGHTTP2_REFUSED_STREAM ? 'LANEWAY_ERR_LANE_BUSY' : reason.startsWith('no response') ? 'LANEWAY_ERR_LANE_TIMEOUT' : 'LANEWAY_ERR_LANE_DISCONNECTED', undefined, sandbox),
    );
  }

  /** The CONNECT stream down the tunnel for a sidecar's raw connection (`kind`), or undefined once `socket` got the refusal. */
  #openRaw(req: IncomingMessage, socket: Duplex, kind: 'tcp' | 'upgrade'): ReturnType<Tunnel['open']> {
    socket.on('error', () => {});
    const lane = this.#resolve(req.headers[FORK_HEADER]);
    if ('error' in lane) return void refuseSocket(socket, lane.error, lane.message);
    let stream;
    try {
      stream = lane.tunnel.open({ ':method': 'CONNECT', ':authority': 'local', [FORK_HEADER]: lane.fork, [LANE_KIND_HEADER]: kind });
    } catch {
      return void refuseSocket(socket, 'LANEWAY_ERR_LANE_DISCONNECTED');
    }
    if (stream === undefined) refuseSocket(socket, 'LANEWAY_ERR_LANE_BUSY');
    return stream;
  }

  /**
   * A sidecar's connection for a local fork (proxy/lane-dial.ts): CONNECT names the fork; once the
   * laptop has connected to its local service, the connection is a byte tunnel over one stream and
   * the sidecar speaks HTTP/1.1 through it. Refusals are JSON errors, as the sidecar's own.
   */
  #onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const tunnelled = this.#openRaw(req, socket, 'tcp');
    if (tunnelled === undefined) return;
    let established = false;
    tunnelled.on('error', () => {});
    socket.once('close', () => tunnelled.destroy());
    tunnelled.once('response', (headers) => {
      const status = Number(headers[':status']);
      if (status === 200) {
        established = true;
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) tunnelled.write(head);
        socket.pipe(tunnelled);
        tunnelled.pipe(socket);
        return;
      }
      // The laptop could not reach its local service: pass its JSON error on.
      let text = '';
      tunnelled.setEncoding('utf8');
      tunnelled.on('data', (chunk: string) => (text += text.length < 4096 ? chunk : ''));
      tunnelled.once('end', () => {
        const error = parseError(text);
        refuseSocket(socket, error?.code ?? 'LANEWAY_ERR_LOCAL_UNAVAILABLE', error?.message);
      });
    });
    tunnelled.once('close', () => {
      if (established) {
        // The laptop's side ended: what was piped is flushed first, an abort cuts the connection.
        if (tunnelled.rstCode !== undefined && tunnelled.rstCode !== constants.NGHTTP2_NO_ERROR) socket.destroy();
        else if (!socket.writableEnded) socket.end();
      } else if (!socket.writableEnded) {
        refuseSocket(socket, tunnelled.rstCode === NGHTTP2_REFUSED_STREAM ? 'LANEWAY_ERR_LANE_BUSY' : 'LANEWAY_ERR_LANE_DISCONNECTED', undefined, '');
      }
    });
  }

  /** A WebSocket (or other) upgrade to a local fork: one CONNECT stream carrying the raw bytes both ways. */
  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const stream = this.#openRaw(req, socket, 'upgrade');
    if (stream === undefined) return;
    stream.on('error', () => socket.destroy());
    socket.on('close', () => stream.destroy());
    stream.on('close', () => socket.destroy());
    // The request head as received (the local service answers the upgrade itself), then whatever followed it.
    let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    stream.write(`${text}\r\n`, 'latin1');
    if (head.length > 0) stream.write(head);
    socket.pipe(stream);
    stream.pipe(socket);
  }
}

/** `{"error":{"code","message"}}` from a Laneway JSON error body, when the code is one the control plane knows. */
function parseError(text: string): { code: ControlPlaneErrorCode; message: string } | undefined {
  try {
    const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof error?.code === 'string' && error.code in CONTROL_PLANE_ERRORS && typeof error.message === 'string') {
      return { code: error.code as ControlPlaneErrorCode, message: error.message };
    }
  } catch {
    // not JSON: the caller's default stands
  }
  return undefined;
}

function fail(res: ServerResponse, code: ControlPlaneErrorCode, message?: string, sandbox?: string): void {
  if (res.headersSent) return void res.destroy();
  const body = errorBody(code, message, sandbox);
  res.writeHead(CONTROL_PLANE_ERRORS[code].status, { 'content-type': 'application/json; charset=utf-8', [ERROR_HEADER]: code, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function failStream(stream: ServerHttp2Stream, code: ControlPlaneErrorCode, message?: string, sandbox?: string): void {
  if (stream.destroyed || stream.headersSent) return void stream.close(NGHTTP2_CANCEL);
  const body = errorBody(code, message, sandbox);
  stream.respond({ ':status': CONTROL_PLANE_ERRORS[code].status, 'content-type': 'application/json; charset=utf-8', [ERROR_HEADER]: code });
  stream.end(body);
}
