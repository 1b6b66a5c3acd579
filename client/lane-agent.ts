// The laptop's end of a local lane: one outbound tunnel to the control plane, HTTP/2 served over it, each stream relayed to the local service.
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect, constants, createServer as createH2Server, type ClientHttp2Session, type IncomingHttpHeaders as H2Headers, type ServerHttp2Stream } from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { ERROR_HEADER, FORK_HEADER } from '../core/constants.js';
import { relayH2 } from '../core/h2-bridge.js';
import { CONTROL_PLANE_ERRORS } from '../model/api-errors.js';
import {
  EXPOSE_HEADER,
  EXPOSE_WAIT_MS,
  LANE_HANDSHAKE_TIMEOUT_MS,
  LANE_KIND_HEADER,
  LANE_MAX_STREAMS,
  LANE_RESPONSE_TIMEOUT_MS,
  LANE_SESSION_HEADER,
  LANE_UPGRADE,
  lanePath,
  parseForkHeader,
} from '../model/lanes.js';
import type { Target } from '../model/route-table.js';

const { NGHTTP2_CANCEL } = constants;

/** Reconnect backoff: from this, doubling, up to the cap, each wait jittered ±50% so laptops do not reconnect in lockstep. */
export const RECONNECT_MIN_MS = 100;
export const RECONNECT_MAX_MS = 5_000;

export interface LaneAgentOptions {
  /** the control plane's base URL */
  readonly server: string;
  readonly token: string | undefined;
  readonly sandbox: string;
  /** the ownership secret (LANE_SESSION_HEADER); default a fresh one. Reusing one lets this machine reclaim its lane after a crash. */
  readonly session?: string;
  /** `<namespace>/<name>:<port>` → the local service it stands for */
  readonly ports: ReadonlyMap<string, Target>;
  /** cluster addresses (`host:port`) the local service may call through the tunnel, each on a local port (0: any free one) */
  readonly exposures?: readonly { readonly target: string; readonly localPort: number }[];
  /** state changes, for the CLI to print */
  readonly onState?: (state: LaneState) => void;
}

/** An exposure as it listens on this machine. */
export interface Exposure {
  readonly target: string;
  readonly local: string;
}

export type LaneState =
  | { readonly kind: 'connected' }
  | { readonly kind: 'disconnected'; readonly reason: string; readonly retryInMs: number }
  /** the control plane refused the tunnel for a reason retrying cannot fix (auth, ownership, no such sandbox) */
  | { readonly kind: 'refused'; readonly status: number; readonly code: string; readonly message: string };


export class LaneAgent {
  /** the ownership secret: the lane stays ours across reconnects */
  readonly session: string;
  readonly #options: LaneAgentOptions;
  // Room for the relay's own caps: LANE_MAX_STREAMS requests plus as many exposure streams.
  readonly #server = createH2Server({ settings: { maxConcurrentStreams: 2 * LANE_MAX_STREAMS } });
  /** one HTTP/2 session per local h2c service (gRPC) */
  readonly #h2Local = new Map<string, ClientHttp2Session>();
  #socket: Socket | null = null;
  #stopped = false;
  #attempt = 0;
  #retry: NodeJS.Timeout | null = null;
  #connected: (() => void) | null = null;
  /** idle CONNECT streams the relay opened for exposures */
  readonly #standby: ServerHttp2Stream[] = [];
  /** local connections waiting for a standby stream */
  readonly #waiting: ((stream: ServerHttp2Stream) => void)[] = [];
  readonly #exposeServers: NetServer[] = [];

  constructor(options: LaneAgentOptions) {
    this.#options = options;
    this.session = options.session ?? newLaneSession();
    this.#server.on('stream', (stream, headers) => this.#onStream(stream, headers));
    this.#server.on('sessionError', () => {});
  }

  /** Connects (and keeps reconnecting); resolves on the first successful connect, rejects on a refusal. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#connected = resolve;
      this.#refused = reject;
      this.#connect();
    });
  }

  #refused: ((err: Error) => void) | null = null;

  /** Opens the exposures' local listeners (loopback only: they reach into the cluster). */
  async expose(): Promise<Exposure[]> {
    const out: Exposure[] = [];
    for (const { target, localPort } of this.#options.exposures ?? []) {
      const server = createNetServer((socket) => this.#onExposeConnection(socket, target));
      this.#exposeServers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(localPort, '127.0.0.1', () => resolve());
      });
      out.push({ target, local: `127.0.0.1:${(server.address() as AddressInfo).port}` });
    }
    return out;
  }

  /** A local connection to an exposure: takes a standby stream, names the target, relays bytes. */
  #onExposeConnection(socket: Socket, target: string): void {
    socket.on('error', () => {});
    socket.pause();
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      const i = this.#waiting.indexOf(take);
      if (i >= 0) this.#waiting.splice(i, 1);
      socket.destroy();
    }, EXPOSE_WAIT_MS);
    const take = (stream: ServerHttp2Stream): void => {
      if (settled) return void this.#standby.push(stream);
      settled = true;
      clearTimeout(timer);
      if (socket.destroyed) return void this.#standby.push(stream);
      stream.respond({ ':status': 200, [EXPOSE_HEADER]: target });
      socket.pipe(stream);
      stream.pipe(socket);
      socket.resume();
      stream.on('close', () => socket.destroy());
      socket.on('close', () => {
        if (!stream.destroyed) stream.end();
      });
    };
    const idle = this.#standby.shift();
    if (idle !== undefined) take(idle);
    else this.#waiting.push(take);
  }

  /** Ends the tunnel for good (no reconnect). */
  stop(): void {
    this.#stopped = true;
    for (const server of this.#exposeServers) server.close();
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#socket?.destroy();
    for (const session of this.#h2Local.values()) session.destroy();
    this.#h2Local.clear();
  }

  /** Drops the current connection (tests: a network blip); the agent reconnects. */
  dropConnection(): void {
    this.#socket?.destroy();
  }

  #connect(): void {
    if (this.#stopped) return;
    const url = new URL(lanePath(this.#options.sandbox), this.#options.server);
    const headers: Record<string, string> = { connection: 'upgrade', upgrade: LANE_UPGRADE, [LANE_SESSION_HEADER]: this.session };
    if (this.#options.token !== undefined) headers.authorization = `Bearer ${this.#options.token}`;
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', headers, timeout: LANE_HANDSHAKE_TIMEOUT_MS });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${LANE_HANDSHAKE_TIMEOUT_MS} ms`)));
    req.on('upgrade', (_res: IncomingMessage, socket: Socket, head: Buffer) => {
      if (this.#stopped) return void socket.destroy();
      this.#attempt = 0;
      this.#socket = socket;
      socket.setNoDelay(true);
      socket.setTimeout(0);
      if (head.length > 0) socket.unshift(head);
      socket.once('close', () => this.#lost('connection closed'));
      socket.on('error', () => {});
      this.#server.emit('connection', socket);
      this.#options.onState?.({ kind: 'connected' });
      this.#connected?.();
      this.#connected = null;
    });
    req.on('response', (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk.slice(0, 4096)));
      res.on('end', () => {
        let code = `HTTP_${res.statusCode}`;
        let message = text.slice(0, 300);
        try {
          const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
          code = body.error?.code ?? code;
          message = body.error?.message ?? message;
        } catch {
          // not our JSON: keep the status
        }
        const status = res.statusCode ?? 0;
        // 5xx (shutting down, busy) may pass; a 4xx is a decision retrying will not change.
        if (status >= 500) return this.#lost(`${code}: ${message}`);
        this.#options.onState?.({ kind: 'refused', status, code, message });
        this.#stopped = true;
        this.#refused?.(Object.assign(new Error(`${message} (${code} ${status})`), { code, status }));
        this.#refused = null;
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => this.#lost(err.code ?? err.message));
    req.end();
  }

  #lost(reason: string): void {
    this.#socket = null;
    if (this.#stopped) return;
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.#attempt++);
    const retryInMs = Math.round(base * (0.5 + Math.random()));
    this.#options.onState?.({ kind: 'disconnected', reason, retryInMs });
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#connect();
    }, retryInMs);
  }

  #onStream(stream: ServerHttp2Stream, headers: H2Headers): void {
    stream.on('error', () => {});
    const kind = headers[LANE_KIND_HEADER];
    if (kind === 'expose') {
      stream.once('close', () => {
        const i = this.#standby.indexOf(stream);
        if (i >= 0) this.#standby.splice(i, 1);
      });
      const waiter = this.#waiting.shift();
      if (waiter !== undefined) waiter(stream);
      else this.#standby.push(stream);
      return;
    }
    const fork = parseForkHeader(headers[FORK_HEADER]);
    const target = fork === undefined ? undefined : this.#options.ports.get(`${fork.workload}:${fork.port}`);
    if (target === undefined) {
      return failStream(stream, `laneway connect serves no local port for ${fork === undefined ? 'this request' : `${fork.workload}:${fork.port}`}`);
    }
    const host = target.host.replace(/^\[|\]$/g, '');
    switch (kind) {
      case 'upgrade': // the relay writes the upgrade request itself
      case 'tcp': // a sidecar's connection (proxy/lane-dial.ts): it speaks HTTP/1.1 through it
        return this.#pipeRaw(stream, host, target.port);
      case 'h2':
        return this.#relayH2(stream, headers, host, target);
      default:
        return failStream(stream, `laneway connect does not carry lane streams of kind ${String(kind)}`);
    }
  }

  /** An HTTP/2 (gRPC) stream, relayed to the local service's own HTTP/2 session: trailers, resets and deadlines intact. */
  #relayH2(stream: ServerHttp2Stream, headers: H2Headers, host: string, target: Target): void {
    let session = this.#h2Local.get(target.address);
    if (session === undefined || session.destroyed || session.closed) {
      session = h2connect(`http://${target.address}`);
      session.on('error', () => {});
      const created = session;
      session.once('close', () => {
        if (this.#h2Local.get(target.address) === created) this.#h2Local.delete(target.address);
      });
      this.#h2Local.set(target.address, session);
    }
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined && name !== LANE_KIND_HEADER) out[name] = value;
    }
    out[':authority'] = `${host}:${target.port}`;
    let outbound;
    try {
      outbound = session.request(out, { endStream: stream.endAfterHeaders });
    } catch (err) {
      return failStream(stream, `the local service at ${target.address} failed: ${(err as Error).message}`);
    }
    relayH2(stream, outbound, LANE_RESPONSE_TIMEOUT_MS, (reason) => failStream(stream, `the local service at ${target.address} failed: ${reason}`));
  }

  /** An upgrade (WebSocket): the raw request and everything after it, both ways, to a TCP connection of the local service. */
  #pipeRaw(stream: ServerHttp2Stream, host: string, port: number): void {
    const socket = netConnect({ host, port });
    socket.setNoDelay(true);
    socket.once('connect', () => {
      if (stream.destroyed) return void socket.destroy();
      stream.respond({ ':status': 200 });
      stream.pipe(socket);
      socket.pipe(stream);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!stream.headersSent) failStream(stream, `the local service at ${host}:${port} failed: ${err.code ?? err.message}`);
      else stream.close(NGHTTP2_CANCEL);
    });
    socket.on('close', () => {
      if (!stream.destroyed) stream.end();
    });
    stream.on('close', () => socket.destroy());
  }
}

/** A fresh ownership secret: 192 random bits. */
export function newLaneSession(): string {
  return randomBytes(24).toString('base64url');
}

/** The laptop's own error answer: 502 LANEWAY_ERR_LOCAL_UNAVAILABLE, JSON, like every Laneway-generated error. */
function failStream(stream: ServerHttp2Stream, message: string): void {
  if (stream.destroyed || stream.headersSent) return void stream.close(NGHTTP2_CANCEL);
  const code = 'LANEWAY_ERR_LOCAL_UNAVAILABLE';
  stream.respond({ ':status': CONTROL_PLANE_ERRORS[code].status, 'content-type': 'application/json; charset=utf-8', [ERROR_HEADER]: code });
  stream.end(JSON.stringify({ error: { code, message } }));
}
