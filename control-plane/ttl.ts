// TTL enforcement: deletes sandboxes whose lease ran out, within one sweep interval of expiry.
import type { FastifyBaseLogger } from 'fastify';
import type { Leadership } from './leadership.js';
import type { Registry } from './registry.js';

/**
 * One coarse timer rather than one per sandbox: expiry is "within a few seconds", and a periodic
 * scan also catches sandboxes that expired while the control plane was down without any bookkeeping.
 * Only the replica holding the lease sweeps; a sweep never overlaps the previous one.
 */
export class TtlSweeper {
  readonly #registry: Registry;
  readonly #intervalMs: number;
  readonly #log: FastifyBaseLogger;
  readonly #leadership: Leadership;
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;

  constructor(registry: Registry, intervalMs: number, log: FastifyBaseLogger, leadership: Leadership) {
    this.#registry = registry;
    this.#intervalMs = intervalMs;
    this.#log = log;
    this.#leadership = leadership;
  }

  /** Sweeps once now (leftovers from downtime; resolves when done), then every interval. */
  async start(): Promise<void> {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.sweep(), this.#intervalMs);
    this.#timer.unref();
    await this.sweep();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  sweep(): Promise<void> {
    if (!this.#leadership.leading) return Promise.resolve();
    this.#sweeping ??= this.#sweepOnce().finally(() => (this.#sweeping = null));
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<void> {
    try {
      const expired = await this.#registry.expire(Date.now());
      if (expired.length > 0) this.#log.info({ sandboxes: expired, revision: this.#registry.revision }, 'sandboxes expired');
    } catch (err) {
      // A failed commit (disk full) leaves the sandbox in place; the next sweep retries.
      this.#log.error({ err }, 'TTL sweep failed');
    }
  }
}
