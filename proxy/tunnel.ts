// Upgrade requests (WebSocket and friends): same routing decision, then a raw TCP tunnel to the chosen upstream.
import { connect, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody, SIDECAR_ERRORS, type SidecarErrorCode } from './errors.js';
import { HOPS_HEADER, scanHeaders } from './headers.js';
import { Decision } from './metrics.js';
import { REFUSE, SANDBOX, type Routed } from './router.js';
import type { ForwardContext } from './forward.js';

export interface TunnelOptions {
  readonly appHost: string;
  readonly connectTimeoutMs: number;
}

const HEAD_END = Buffer.from('\r\n\r\n');

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
    const routed: Routed = { route: undefined, target: undefined, error: undefined };
    const decision = ctx.router.decide(inbound, appPort, routed);
    if (decision === REFUSE) {
      this.#refuse(client, routed, routed.error as SidecarErrorCode);
      return;
    }
    const sandbox = decision === SANDBOX;
    const host = sandbox ? routed.target!.host.replace(/^\[|\]$/g, '') : this.#options.appHost;
    const port = sandbox ? routed.target!.port : appPort;

    // Rebuild the request head: hop-by-hop headers were dropped by the scan; the upgrade pair goes back in.
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    const forward = inbound.forward;
    for (let i = 0; i < forward.length; i += 2) lines.push(`${forward[i]}: ${forward[i + 1]}`);
    lines.push('connection: upgrade', `upgrade: ${inbound.upgrade ?? 'websocket'}`);
    if (req.socket.remoteAddress) lines.push(`x-forwarded-for: ${req.socket.remoteAddress}`);
    if (sandbox) lines.push(`${HOPS_HEADER}: ${inbound.hops + 1}`);
    const requestHead = `${lines.join('\r\n')}\r\n\r\n`;

    const upstream = connect({ host, port, noDelay: true });
    upstream.setTimeout(this.#options.connectTimeoutMs);
    let connected = false;
    upstream.once('timeout', () => {
      if (!connected) upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
    });
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
      ctx.stats.tunnels++;
      upstream.write(requestHead);
      if (head.length > 0) upstream.write(head);
      if (sandbox) this.#relayWithSandboxHeader(upstream, client, routed.route!.sandbox);
      else this.#pipe(upstream, client);
    });
    upstream.on('error', (err: Error & { code?: string }) => {
      if (connected) {
        client.destroy();
        return;
      }
      const timeout = err.code === 'ETIMEDOUT';
      const code: SidecarErrorCode = sandbox
        ? timeout ? 'LANEWAY_ERR_SANDBOX_TIMEOUT' : 'LANEWAY_ERR_SANDBOX_UNREACHABLE'
        : timeout ? 'LANEWAY_ERR_BASELINE_TIMEOUT' : 'LANEWAY_ERR_BASELINE_UNREACHABLE';
      ctx.stats.upstreamError(code);
      this.#refuse(client, routed, code);
    });
    client.once('close', () => upstream.destroy());
  }

  #pipe(upstream: Socket, client: Duplex): void {
    upstream.pipe(client);
    client.pipe(upstream);
    upstream.once('close', () => client.destroy());
    this.#ctx.stats.requests[Decision.baseline]!++;
  }

  /** Adds `laneway-sandbox` to the upstream's response head (101 or a refusal), then relays raw bytes. */
  #relayWithSandboxHeader(upstream: Socket, client: Duplex, sandbox: string): void {
    let pending: Buffer | null = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      pending = Buffer.concat([pending as Buffer, chunk]);
      const end = pending.indexOf(HEAD_END);
      if (end === -1) {
        if (pending.length > 65536) client.destroy();
        return;
      }
      upstream.off('data', onData);
      const headPart = pending.subarray(0, end);
      const rest = pending.subarray(end);
      client.write(Buffer.concat([headPart, Buffer.from(`\r\nlaneway-sandbox: ${sandbox}`), rest]));
      pending = null;
      upstream.pipe(client);
    };
    upstream.on('data', onData);
    client.pipe(upstream);
    upstream.once('close', () => client.destroy());
    this.#ctx.stats.requests[Decision.sandbox]!++;
  }

  #refuse(client: Duplex, routed: Routed, code: SidecarErrorCode): void {
    const target = routed.target?.address;
    const body = errorBody(code, routed.route?.sandbox, target);
    const extra = routed.route !== undefined ? `laneway-sandbox: ${routed.route.sandbox}\r\n` : '';
    client.end(
      `HTTP/1.1 ${SIDECAR_ERRORS[code].status} ${code}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `laneway-error: ${code}\r\n${extra}connection: close\r\n\r\n${body}`,
    );
    this.#ctx.stats.requests[Decision.error]!++;
  }
}
