// Keep-alive connection pools: one per baseline app port, and a bounded LRU of pools for sandbox targets.
import { createRequire } from 'node:module';
import type { Dispatcher, Pool as PoolType } from 'undici';
import { LRUCache } from 'lru-cache';
import { Agent as Http1Agent } from 'node:http';
import type { Target } from '../model/route-table.js';
import { dialLane, type DialCallback } from './lane-dial.js';
import { SessionPool } from './h2.js';
import { H2Dispatcher } from './h1-to-h2.js';
import { isHttp1ParseError, ProtocolMemos, type OnLearned, type ProtocolMemo } from './protocol-memo.js';
import { AS_CLIENT, AUTO, H2C, targetProtocol, type UpstreamProtocol } from './protocols.js';
import type { ProxyHandler } from './forward.js';
import type { Stats } from './metrics.js';

/**
 * undici's connection pool alone. The package index also loads fetch, WebSocket, caches and their
 * dependencies: measured here, importing it added ~18 MB RSS to the sidecar versus ~9 MB for the
 * pool module (2026-11-27, Node 20). undici ships no `exports` map, so the path is reachable; it is
 * pinned by package-lock and covered by every forwarding test.
 */
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
type Pool = PoolType;
type PoolOptions = NonNullable<ConstructorParameters<typeof PoolType>[1]>;

/** What the HTTP/1.1 forwarder dispatches to: undici's pool, or a translating or learning stand-in with the same call. */
export interface Upstream {
  dispatch(opts: Dispatcher.DispatchOptions, handler: ProxyHandler): boolean;
}

export interface UpstreamOptions {
  readonly appHost: string;
  readonly appPorts: readonly number[];
  /** each app port's upstream protocol (`--port …/<protocol>`), in `appPorts` order */
  readonly protocols: readonly UpstreamProtocol[];
  /** the translation counters (metrics.ts) */
  readonly stats: Stats;
  /** an `auto` upstream's protocol was learned (logged by the sidecar) */
  readonly onLearned?: OnLearned;
  readonly connectTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxPools: number;
}

/**
 * `auto`: the first request to an upstream waits for its protocol probe (protocol-memo.ts), then it and
 * every later one go straight to the learned protocol's dispatcher. Nothing is sent before the probe ends.
 */
class AutoUpstream implements Upstream {
  readonly #memo: ProtocolMemo;
  readonly #http1: Pool;
  readonly #h2c: H2Dispatcher;

  constructor(memo: ProtocolMemo, http1: Pool, h2c: H2Dispatcher) {
    this.#memo = memo;
    this.#http1 = http1;
    this.#h2c = h2c;
    // undici fails the request first (502, never resent), then reports the connection: an HTTP/2 answer to
    // HTTP/1.1 is a parse error, a refused connection an app restarting — either way, learn again next time.
    http1.on('disconnect', (_origin, _targets, err) => {
      if (isHttp1ParseError(err as { code?: unknown; name?: unknown })) memo.forget();
    });
    http1.on('connectionError', () => memo.forget());
  }

  get pool(): Pool {
    return this.#http1;
  }

  dispatch(opts: Dispatcher.DispatchOptions, handler: ProxyHandler): boolean {
    const learned = this.#memo.learned;
    if (learned === H2C) return this.#h2c.dispatch(opts, handler);
    if (learned !== AS_CLIENT) return this.#http1.dispatch(opts, handler);
    // Unreachable stays AS_CLIENT: the request then goes as HTTP/1.1 and fails (or falls back) as usual.
    void this.#memo.probe().then(() => (this.#memo.learned === H2C ? this.#h2c.dispatch(opts, handler) : this.#http1.dispatch(opts, handler)));
    return true;
  }
}

/** The undici pool an upstream holds (to close it), or null for an h2c dispatcher. */
function poolOf(upstream: Upstream): Pool | null {
  if (upstream instanceof AutoUpstream) return upstream.pool;
  return upstream instanceof H2Dispatcher ? null : (upstream as unknown as Pool);
}

export class Upstreams {
  readonly #baseline = new Map<number, Upstream>();
  /** app port → its upstream protocol, for fork targets that inherit it */
  readonly #protocols = new Map<number, UpstreamProtocol>();
  readonly #sandboxes: LRUCache<string, Upstream>;
  readonly #options: UpstreamOptions;
  /** h2c sessions of translated HTTP/1.1 requests (HTTP/2 clients have their own, h2.ts) */
  readonly #h2Sessions: SessionPool;
  /** `auto` upstreams' learned protocols, shared by both client protocols */
  readonly memos: ProtocolMemos;
  /** keep-alive HTTP/1.1 connections of translated HTTP/2 requests (h2-to-h1.ts): Node's client writes request trailers, undici's does not */
  readonly http1Agent: Http1Agent;

  constructor(options: UpstreamOptions) {
    this.#options = options;
    this.#h2Sessions = new SessionPool(options.maxPools, options.connectTimeoutMs);
    this.memos = new ProtocolMemos(options.maxPools, options.connectTimeoutMs, options.onLearned ?? null);
    // Below Node's default server keepAliveTimeout (5 s), as the pools below.
    this.http1Agent = new Http1Agent({ keepAlive: true, keepAliveMsecs: 1000, timeout: options.idleTimeoutMs, maxFreeSockets: 64 });
    const host = options.appHost.includes(':') ? `[${options.appHost}]` : options.appHost;
    options.appPorts.forEach((port, i) => {
      const protocol = options.protocols[i] ?? AS_CLIENT;
      this.#protocols.set(port, protocol);
      this.#baseline.set(port, this.#createUpstream(host, port, `http://${host}:${port}`, protocol));
    });
    // Sandboxes come and go all day: evicted pools are closed (in-flight requests finish first).
    this.#sandboxes = new LRUCache<string, Upstream>({
      max: options.maxPools,
      // An h2c dispatcher owns no connection: its sessions live in the shared session pool, bounded and closed there.
      dispose: (upstream) => {
        const pool = poolOf(upstream);
        if (pool !== null) pool.close().catch(() => pool.destroy().catch(() => {}));
      },
    });
  }

  /** The port's protocol decides, once per upstream: a plain pool (no translation), an h2c dispatcher, or a learning one. */
  #createUpstream(host: string, port: number, origin: string, protocol: UpstreamProtocol): Upstream {
    if (protocol === H2C) return new H2Dispatcher(this.#h2Sessions, { host, port, upstreamTimeoutMs: this.#options.upstreamTimeoutMs }, this.#options.stats);
    if (protocol === AUTO) {
      const memo = this.memos.get(host, port);
      const h2c = new H2Dispatcher(this.#h2Sessions, { host, port, upstreamTimeoutMs: this.#options.upstreamTimeoutMs, onNotH2: () => memo.forget() }, this.#options.stats);
      return new AutoUpstream(memo, this.#createPool(origin), h2c);
    }
    return this.#createPool(origin) as unknown as Upstream;
  }

  /** An app port's upstream protocol (AS_CLIENT for a port not configured). */
  portProtocol(appPort: number): UpstreamProtocol {
    return this.#protocols.get(appPort) ?? AS_CLIENT;
  }

  #createPool(origin: string, connect: PoolOptions['connect'] = { timeout: this.#options.connectTimeoutMs, noDelay: true }): Pool {
    return new Pool(origin, {
      connect,
      headersTimeout: this.#options.upstreamTimeoutMs,
      bodyTimeout: this.#options.idleTimeoutMs,
      // Below Node's default server keepAliveTimeout (5 s) so we rarely reuse a socket the app is closing.
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
      pipelining: 1,
    });
  }

  baseline(appPort: number): Upstream {
    return this.#baseline.get(appPort) as Upstream;
  }

  /** A fork's upstream, made once per target address: its protocol is the target's own (`h2c://`, `http://`) or its app port's. */
  sandbox(target: Target, appPort: number): Upstream {
    let upstream = this.#sandboxes.get(target.address);
    if (upstream === undefined) {
      upstream = this.#createUpstream(target.host, target.port, `http://${target.host}:${target.port}`, targetProtocol(target, this.portProtocol(appPort)));
      this.#sandboxes.set(target.address, upstream);
    }
    return upstream;
  }

  /**
   * A local lane's pool: its connections are CONNECT tunnels to one lane's laptop (`fork`), so lanes
   * behind one relay address never share a connection.
   */
  lane(target: Target, fork: string): Upstream {
    const name = `${target.address}#${fork}`;
    let pool = this.#sandboxes.get(name) as Pool | undefined;
    if (pool === undefined) {
      const timeoutMs = this.#options.connectTimeoutMs;
      pool = this.#createPool(`http://${target.host}:${target.port}`, (_opts: unknown, callback: DialCallback) => dialLane(target, fork, timeoutMs, callback));
      this.#sandboxes.set(name, pool as unknown as Upstream);
    }
    return pool as unknown as Upstream;
  }

  get sandboxPools(): number {
    return this.#sandboxes.size;
  }

  async close(): Promise<void> {
    const baseline = [...this.#baseline.values()].map(poolOf).filter((p) => p !== null);
    const pools = [...baseline, ...[...this.#sandboxes.values()].map(poolOf).filter((p) => p !== null)];
    this.#sandboxes.clear(); // runs dispose → close
    await Promise.allSettled(baseline.map((p) => p.close()));
    await Promise.allSettled(pools.map((p) => p.destroy()));
    this.#h2Sessions.close();
    this.http1Agent.destroy();
  }
}
