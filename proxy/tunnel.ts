// Upgrade requests (WebSocket and friends): same checks and routing decision, then a raw TCP tunnel — only after a 101.
import { request as httpRequest, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { errorBody, SIDECAR_ERRORS, type SidecarErrorCode } from './errors.js';
import { checkFraming, dropConnectionListed, isHopByHopResponseHeader, requestProblem, scanHeaders, type InboundHeaders } from './headers.js';
import { FALLBACK_HEADER, mayFallBack, pushForwardingHeaders, upstreamFailureOf } from './outcome.js';
import { Decision } from './metrics.js';
import { REFUSE, SANDBOX, type Routed } from './router.js';
import type { ForwardContext } from './forward.js';

export interface TunnelOptions {
  readonly appHost: string;
  readonly connectTimeoutMs: number;
  /** from connect to the upstream's answer (101 or not) */
  readonly upstreamTimeoutMs: number;
  /** an open tunnel with no byte either way for this long is closed */
  readonly tunnelIdleTimeoutMs: number;
}

/**
 * After answering a refused upgrade with `connection: close`, how long the client may take to close
 * its side. Unread bytes (a pipelined request) are discarded meanwhile: closing at once would reset
 * the connection and could destroy the response before the client read it (RFC 9112 §9.6).
 */
export const UPGRADE_LINGER_MS = 2000;

const NO_ROUTE: Routed = Object.freeze({ route: undefined, target: undefined, error: undefined }) as Routed;

/** Upgrade tokens without `h2c`: RFC 9113 §3.1 retired the HTTP/1.1 → h2c upgrade, so such a request is served as plain HTTP/1.1. */
function withoutH2c(upgrade: string): string | undefined {
  if (upgrade.toLowerCase().indexOf('h2c') === -1) return upgrade;
  const kept = upgrade.split(',').map((t) => t.trim()).filter((t) => t !== '' && t.toLowerCase() !== 'h2c');
  return kept.length > 0 ? kept.join(', ') : undefined;
}

export class Tunneler {
  readonly #ctx: ForwardContext;
  readonly #options: TunnelOptions;

  constructor(ctx: ForwardContext, options: TunnelOptions) {
    this.#ctx = ctx;
    this.#options = options;
  }

  handle(req: IncomingMessage, client: Duplex, head: Buffer, appPort: number): void {
    const ctx = this.#ctx;
    client.on('error', () => client.destroy());
    const inbound = scanHeaders(req.rawHeaders, ctx.rules);
    // A chunked upgrade request's body cannot be told apart from the new protocol without decoding it.
    checkFraming(inbound, req.httpVersionMinor);
    const problem = requestProblem(req.url as string, inbound) ?? (inbound.hasBody && req.headers['content-length'] === undefined ? 'LANEWAY_ERR_BAD_REQUEST' : undefined);
    if (problem !== undefined) {
      this.#refuse(client, NO_ROUTE, problem);
      return;
    }
    const routed: Routed = { route: undefined, target: undefined, error: undefined };
    const decision = ctx.router.decide(inbound, appPort, routed);
    if (decision === REFUSE) {
      this.#refuse(client, routed, routed.error as SidecarErrorCode);
      return;
    }
    // A Content-Length body comes before whatever follows the request; Node hands it over inside `head`.
    const bodyLength = inbound.hasBody ? Number(req.headers['content-length']) : 0;
    const inHead = Math.min(bodyLength, head.length);
    this.#open(req, client, inbound, head, inHead, bodyLength - inHead, appPort, routed, decision === SANDBOX, false);
  }

  /** Sends the upgrade request to the sandbox or the baseline; `fellBack`: the sandbox was unreachable and --fallback baseline chose the app. */
  #open(req: IncomingMessage, client: Duplex, inbound: InboundHeaders, head: Buffer, inHead: number, bodyAfterHead: number, appPort: number, routed: Routed, sandbox: boolean, fellBack: boolean): void {
    const ctx = this.#ctx;
    const host = sandbox ? routed.target!.host.replace(/^\[|\]$/g, '') : this.#options.appHost;
    const port = sandbox ? routed.target!.port : appPort;

    // Hop-by-hop headers were dropped by the scan; the upgrade pair goes back in (unless it only asked for h2c).
    const headers = inbound.forward.slice();
    const upgrade = inbound.upgrade === undefined ? undefined : withoutH2c(inbound.upgrade);
    if (upgrade !== undefined) headers.push('connection', 'upgrade', 'upgrade', upgrade);
    else headers.push('connection', 'close');
    pushForwardingHeaders(headers, req.socket.remoteAddress, inbound, sandbox ? routed.route!.key + ctx.forkOf.get(appPort)! : null);

    let bodyLeft = bodyAfterHead;
    const rest = head.subarray(inHead);

    const upstream = httpRequest({ host, port, method: req.method, path: req.url, headers, setHost: false, agent: false });
    const counted = sandbox ? Decision.sandbox : fellBack ? Decision.fallback : Decision.baseline;
    const sandboxName = sandbox ? routed.route!.sandbox : undefined;
    let streamedBody = false;
    let connected = false;
    let answered = false;
    let relayed = false;
    upstream.once('socket', (socket: Socket) => {
      socket.setTimeout(this.#options.connectTimeoutMs);
      socket.once('connect', () => {
        connected = true;
        socket.setTimeout(this.#options.upstreamTimeoutMs);
      });
      socket.once('timeout', () => {
        if (answered) return;
        upstream.destroy(Object.assign(new Error(connected ? 'upstream answer timeout' : 'connect timeout'), { code: 'ETIMEDOUT' }));
      });
    });
    upstream.on('error', (err: Error & { code?: string }) => {
      if (client.destroyed || relayed) return;
      if (answered) {
        client.destroy(); // mid-response: closing is the only honest signal left
        return;
      }
      // The connect timer above reports ETIMEDOUT before connecting; undici's code for that is the connect-phase one.
      const failure = !connected && err.code === 'ETIMEDOUT' ? 'UND_ERR_CONNECT_TIMEOUT' : (err.code ?? '');
      if (!connected && mayFallBack(ctx.fallbackToBaseline, sandbox, failure, streamedBody)) {
        ctx.log.warn({ sandbox: routed.route?.sandbox, target: routed.target?.address, code: err.code }, 'sandbox unreachable; falling back to baseline');
        client.off('data', onData);
        client.off('close', onClientClose);
        this.#open(req, client, inbound, head, inHead, bodyAfterHead, appPort, NO_ROUTE, false, true);
        return;
      }
      const code = upstreamFailureOf(sandbox, failure);
      ctx.stats.upstreamError(code);
      this.#refuse(client, routed, code);
    });
    const onClientClose = (): void => {
      upstream.destroy();
    };
    client.once('close', onClientClose);

    // Only a 101 switches protocols (RFC 9110 §15.2.2): until then no further client byte reaches the upstream.
    upstream.once('upgrade', (res: IncomingMessage, socket: Socket, upstreamHead: Buffer) => {
      answered = true;
      ctx.stats.tunnels++;
      ctx.stats.requests[counted]!++;
      client.write(responseHead(res, sandboxName, fellBack, false), 'latin1');
      if (upstreamHead.length > 0) client.write(upstreamHead);
      if (rest.length > 0) socket.write(rest);
      // Idle in both directions for the limit: each socket's own timer sees the bytes it reads or writes.
      const idle = (): void => {
        client.destroy();
        socket.destroy();
      };
      socket.setTimeout(this.#options.tunnelIdleTimeoutMs, idle);
      (client as Socket).setTimeout?.(this.#options.tunnelIdleTimeoutMs, idle);
      socket.on('error', () => client.destroy());
      socket.once('close', () => client.destroy());
      client.once('close', () => socket.destroy());
      socket.pipe(client);
      client.pipe(socket);
    });
    // Anything else is an ordinary response: relayed with `connection: close`, then the connection ends,
    // so a request pipelined behind the upgrade is never spliced to this upstream unrouted.
    upstream.once('response', (res: IncomingMessage) => {
      answered = true;
      res.socket.setTimeout(0);
      ctx.stats.requests[counted]!++;
      client.write(responseHead(res, sandboxName, fellBack, true), 'latin1');
      res.on('error', () => client.destroy());
      res.once('end', () => (relayed = true));
      res.pipe(client);
      linger(client);
    });

    if (inHead > 0) upstream.write(head.subarray(0, inHead));
    // Rare: the body is longer than the first read. Stream the remainder; bytes past it belong to the new protocol.
    const onData = (chunk: Buffer): void => {
      streamedBody = true;
      const take = Math.min(bodyLeft, chunk.length);
      bodyLeft -= take;
      if (bodyLeft > 0) {
        if (!upstream.write(chunk)) {
          client.pause();
          upstream.once('drain', () => client.resume());
        }
        return;
      }
      client.off('data', onData);
      client.pause();
      if (take < chunk.length) client.unshift(chunk.subarray(take));
      upstream.end(chunk.subarray(0, take));
    };
    if (bodyLeft === 0) {
      upstream.end();
      return;
    }
    client.on('data', onData);
  }

  #refuse(client: Duplex, routed: Routed, code: SidecarErrorCode): void {
    const target = routed.target?.address;
    const body = errorBody(code, routed.route?.sandbox, target);
    const extra = routed.route !== undefined ? `laneway-sandbox: ${routed.route.sandbox}\r\n` : '';
    const { status } = SIDECAR_ERRORS[code];
    client.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `laneway-error: ${code}\r\n${extra}connection: close\r\n\r\n${body}`,
    );
    linger(client);
    this.#ctx.stats.requests[Decision.error]!++;
  }
}

/**
 * The upstream's response head for the client. A 101 keeps its `Connection`/`Upgrade` pair (it is the
 * handshake); any other response loses its hop-by-hop headers and says `connection: close`. Without a
 * Content-Length the body is delimited by the close (RFC 9112 §6.3), since Node has already de-chunked it.
 */
function responseHead(res: IncomingMessage, sandbox: string | undefined, fellBack: boolean, closing: boolean): string {
  const raw = res.rawHeaders;
  const kept: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (closing && isHopByHopResponseHeader(name)) {
      if (name.toLowerCase() === 'connection') connection = raw[i + 1];
      continue;
    }
    kept.push(name, raw[i + 1]!);
  }
  if (connection !== undefined) dropConnectionListed(connection, kept);
  let head = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}\r\n`;
  for (let i = 0; i < kept.length; i += 2) head += `${kept[i]}: ${kept[i + 1]}\r\n`;
  if (sandbox !== undefined) head += `laneway-sandbox: ${sandbox}\r\n`;
  else if (fellBack) head += `${FALLBACK_HEADER}: 1\r\n`;
  if (closing) head += 'connection: close\r\n';
  return `${head}\r\n`;
}

/** Once our side is ended (after the response), discards what the client still sends until it closes, at most UPGRADE_LINGER_MS. */
function linger(client: Duplex): void {
  client.resume();
  client.once('finish', () => {
    const socket = client as Socket;
    if (typeof socket.setTimeout === 'function') socket.setTimeout(UPGRADE_LINGER_MS, () => client.destroy());
    else client.destroy();
  });
}
