// Keep-alive connection pools: one per baseline app port, and a bounded LRU of pools for sandbox targets.
import { createRequire } from 'node:module';
import type { Pool as PoolType } from 'undici';
import { LRUCache } from 'lru-cache';
import type { Target } from '../model/route-table.js';
import { dialLane, type DialCallback } from './lane-dial.js';

/**
 * undici's connection pool alone. The package index also loads fetch, WebSocket, caches and their
 * dependencies: measured here, importing it added ~18 MB RSS to the sidecar versus ~9 MB for the
 * pool module (2026-11-27, Node 20). undici ships no `exports` map, so the path is reachable; it is
 * pinned by package-lock and covered by every forwarding test.
 */
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
type Pool = PoolType;
type PoolOptions = NonNullable<ConstructorParameters<typeof PoolType>[1]>;

export interface UpstreamOptions {
  readonly appHost: string;
  readonly appPorts: readonly number[];
  readonly connectTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxPools: number;
}

export class Upstreams {
  readonly #baseline = new Map<number, Pool>();
  readonly #sandboxes: LRUCache<string, Pool>;
  readonly #options: UpstreamOptions;

  constructor(options: UpstreamOptions) {
    this.#options = options;
    const host = options.appHost.includes(':') ? `[${options.appHost}]` : options.appHost;
    for (const port of options.appPorts) this.#baseline.set(port, this.#createPool(`http://${host}:${port}`));
    // Sandboxes come and go all day: evicted pools are closed (in-flight requests finish first).
    this.#sandboxes = new LRUCache<string, Pool>({
      max: options.maxPools,
      dispose: (pool) => {
        pool.close().catch(() => pool.destroy().catch(() => {}));
      },
    });
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

  baseline(appPort: number): Pool {
    return this.#baseline.get(appPort) as Pool;
  }

  sandbox(target: Target): Pool {
    let pool = this.#sandboxes.get(target.address);
    if (pool === undefined) {
      pool = this.#createPool(`http://${target.address}`);
      this.#sandboxes.set(target.address, pool);
    }
    return pool;
  }

  /**
   * A local lane's pool: its connections are CONNECT tunnels to one lane's laptop (`fork`), so lanes
   * behind one relay address never share a connection.
   */
  lane(target: Target, fork: string): Pool {
    const name = `${target.address}#${fork}`;
    let pool = this.#sandboxes.get(name);
    if (pool === undefined) {
      const timeoutMs = this.#options.connectTimeoutMs;
      pool = this.#createPool(`http://${target.host}:${target.port}`, (_opts: unknown, callback: DialCallback) => dialLane(target, fork, timeoutMs, callback));
      this.#sandboxes.set(name, pool);
    }
    return pool;
  }

  get sandboxPools(): number {
    return this.#sandboxes.size;
  }

  async close(): Promise<void> {
    const pools = [...this.#baseline.values(), ...this.#sandboxes.values()];
    this.#sandboxes.clear(); // runs dispose → close
    await Promise.allSettled([...this.#baseline.values()].map((p) => p.close()));
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}
