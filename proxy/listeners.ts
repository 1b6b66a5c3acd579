// The data-plane listeners: one port per `--port`, HTTP/1.1 and h2c told apart by the connection preface, with bounded drain.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Http2Session } from 'node:http2';
import type { Forwarder } from './forward.js';
import type { Tunneler } from './tunnel.js';
import type { H2Forwarder } from './h2.js';
import type { Stats } from './metrics.js';
import type { PortMapping } from './config.js';
import { errorBody, SIDECAR_ERRORS, type SidecarErrorCode } from './errors.js';
import type { Duplex } from 'node:stream';

export interface ListenerOptions {
  readonly ports: readonly PortMapping[];
  readonly idleTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly maxConnections: number;
}

/** How often Node checks HTTP/1 connections for an expired headers timeout (its default, 30 s, would let a 10 s limit run to 40 s). */
function checkingIntervalMs(headersTimeoutMs: number): number {
  return Math.max(50, Math.min(1000, Math.floor(headersTimeoutMs / 4)));
}

/** A connection that has not sent enough to tell HTTP/1.1 from HTTP/2 within the headers timeout. */
function onSniffTimeout(this: Socket): void {
  this.destroy();
}

/**
 * Node's parser (llhttp, strict) refused the bytes: an RFC 9112 framing error (Content-Length with Transfer-Encoding,
 * differing Content-Lengths, obs-fold, bare LF, a bad chunk size…) or a head past 16 KiB. The client gets the
 * sidecar's JSON error, as for any request the sidecar refuses, and the connection closes: after a framing error
 * nothing on it can be trusted to be where the client meant it (test/proxy/smuggling.test.ts).
 */
function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const started = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (err.code === 'ECONNRESET' || !socket.writable || started) {
    socket.destroy();
    return;
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    // a head that took longer than --headers-timeout (slowloris): Node's own answer
    socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    return;
  }
  const code: SidecarErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'LANEWAY_ERR_HEADERS_TOO_LARGE' : 'LANEWAY_ERR_BAD_REQUEST';
  const body = errorBody(code);
  const { status } = SIDECAR_ERRORS[code];
  socket.end(
    `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nlaneway-error: ${code}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** "PRI" starts the HTTP/2 client preface (RFC 9113 §3.4); no HTTP/1.1 method does. */
const P = 0x50;
const R = 0x52;
const I = 0x49;

function looksLikeH2(chunk: Buffer): boolean | undefined {
  if (chunk.length === 0) return undefined;
  if (chunk[0] !== P) return false;
  if (chunk.length < 2) return undefined;
  if (chunk[1] !== R) return false;
  if (chunk.length < 3) return undefined;
  return chunk[2] === I;
}

export class Listeners {
  readonly #front: NetServer[] = [];
  readonly #http1: HttpServer[] = [];
  readonly #h2: H2Forwarder[];
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<Http2Session>();

  constructor(options: ListenerOptions, forwarder: Forwarder, tunneler: Tunneler, h2: H2Forwarder[], stats: Stats) {
    this.#h2 = h2;
    const sockets = this.#sockets;
    const onSocketClose = function (this: Socket): void {
      sockets.delete(this);
      stats.openConnections--;
    };
    options.ports.forEach(({ appPort }, i) => {
      const http1 = createHttpServer(
        {
          keepAliveTimeout: options.idleTimeoutMs,
          // Slowloris heads: Node answers 408 and closes once a head takes longer than this.
          headersTimeout: options.headersTimeoutMs,
          connectionsCheckingInterval: checkingIntervalMs(options.headersTimeoutMs),
          // Uploads and downloads may legitimately take long; a stalled body is bounded by --body-timeout (forward.ts).
          requestTimeout: 0,
          // checked by the sidecar (headers.ts checkFraming), so a missing Host gets its JSON 400 like every refusal
          requireHostHeader: false,
          noDelay: true,
        },
        (req, res) => forwarder.handle(req, res, appPort),
      );
      // Node drops header lines past this count silently (baggage too); keep them all, the 16 KiB
      // header-size limit still bounds the head, and answer 431 past MAX_REQUEST_HEADERS (headers.ts).
      http1.maxHeadersCount = 0;
      // This server never listens itself (the front server below hands it sockets), and Node starts
      // connection tracking — which enforces headersTimeout and lets closeIdleConnections() work — on
      // 'listening'. test/proxy/limits.test.ts fails if this stops working.
      http1.emit('listening');
      http1.on('upgrade', (req, socket, head) => tunneler.handle(req, socket, head, appPort));
      http1.on('clientError', onClientError);
      const h2server = h2[i]!.server;
      h2server.on('session', (session: Http2Session) => {
        this.#sessions.add(session);
        session.once('close', () => this.#sessions.delete(session));
      });
      // Sniffing costs one extra read callback per connection, not per request.
      const front = createNetServer({ noDelay: true, pauseOnConnect: false }, (socket) => {
        // One cap across all listeners: past it the fd is closed at once, so the process keeps
        // descriptors for its upstream connections and the admin server (a separate listener).
        if (stats.openConnections >= options.maxConnections) {
          stats.droppedConnections++;
          socket.destroy();
          return;
        }
        stats.openConnections++;
        sockets.add(socket);
        socket.once('close', onSocketClose);
        socket.on('error', () => socket.destroy());
        socket.setTimeout(options.headersTimeoutMs);
        socket.once('timeout', onSniffTimeout);
        let buffered: Buffer | null = null;
        const onData = (chunk: Buffer): void => {
          const data = buffered === null ? chunk : Buffer.concat([buffered, chunk]);
          const h2c = looksLikeH2(data);
          if (h2c === undefined) {
            buffered = data;
            return;
          }
          socket.off('data', onData);
          socket.setTimeout(0);
          socket.off('timeout', onSniffTimeout);
          socket.pause();
          socket.unshift(data);
          if (h2c) {
            // The HTTP/2 session reads what is buffered itself on the next tick; resuming would emit it to nobody.
            h2server.emit('connection', socket);
          } else {
            http1.emit('connection', socket);
            socket.resume();
          }
        };
        socket.on('data', onData);
      });
      this.#front.push(front);
      this.#http1.push(http1);
    });
  }

  /** Binds every listener; resolves with the ports actually bound (in `--port` order; 0 picks a free one). */
  async listen(host: string, ports: readonly PortMapping[]): Promise<number[]> {
    await Promise.all(
      this.#front.map(
        (server, i) =>
          new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(ports[i]!.listenPort, host, () => {
              server.off('error', reject);
              resolve();
            });
          }),
      ),
    );
    return this.#front.map((server) => (server.address() as { port: number }).port);
  }

  /**
   * Stops accepting, lets in-flight requests finish (closing keep-alive connections as they go idle,
   * sending GOAWAY to HTTP/2 clients), and after `timeoutMs` closes whatever is left.
   * Resolves true when everything finished in time.
   */
  async drain(timeoutMs: number, inFlight: () => number): Promise<boolean> {
    for (const server of this.#front) server.close();
    for (const session of this.#sessions) session.close();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const server of this.#http1) server.closeIdleConnections();
      if (inFlight() === 0) {
        // Idle keep-alive and upgraded sockets: nothing is lost by closing them now.
        for (const socket of this.#sockets) socket.destroySoon();
        if (this.#sockets.size === 0) return true;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const clean = inFlight() === 0;
    for (const socket of this.#sockets) socket.destroy();
    for (const h2 of this.#h2) h2.close();
    return clean;
  }
}
