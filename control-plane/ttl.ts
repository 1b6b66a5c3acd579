// TTL enforcement: deletes sandboxes whose lease ran out, within one sweep interval of expiry.
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from './registry.js';

/**
 * One coarse timer rather than one per sandbox: expiry is "within a few seconds", and a periodic
 * scan also catches sandboxes that expired while the control plane was down without any bookkeeping.
 */
export class TtlSweeper {
  readonly #registry: Registry;
  readonly #intervalMs: number;
  readonly #log: FastifyBaseLogger;
  #timer: NodeJS.Timeout | null = null;

  constructor(registry: Registry, intervalMs: number, log: FastifyBaseLogger) {
    this.#registry = registry;
    this.#intervalMs = intervalMs;
    this.#log = log;
  }

  /** Sweeps once now (leftovers from downtime), then every interval. */
  start(): void {
    if (this.#timer !== null) return;
    this.sweep();
    this.#timer = setInterval(() => this.sweep(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  sweep(): void {
    try {
      const expired = this.#registry.expire(Date.now());
      if (expired.length > 0) this.#log.info({ sandboxes: expired, revision: this.#registry.revision }, 'sandboxes expired');
    } catch (err) {
      // A failed commit (disk full) leaves the sandbox in place; the next sweep retries.
      this.#log.error({ err }, 'TTL sweep failed');
    }
  }
}
