// TCP health of fork targets: a target is ready when it accepts a connection; results feed each sandbox's phase.
import { connect } from 'node:net';
import { parseHostPort } from '../model/route-table.js';
import type { Leadership } from './leadership.js';

export interface TargetHealth {
  readonly ready: boolean;
  /** why it is not ready (`ECONNREFUSED`, `connect timeout after 1000ms`, `not probed yet`); null when ready */
  readonly reason: string | null;
  /** epoch ms of the last probe; null before the first */
  readonly checkedAt: number | null;
}

const NOT_PROBED: TargetHealth = Object.freeze({ ready: false, reason: 'not probed yet', checkedAt: null });

/**
 * Probes every distinct `host:port` the sandboxes name, once per interval, plus at once when a new
 * target appears (so `apply --wait` does not sit out a whole interval). A TCP connect is the
 * cheapest signal that says "something listens there" without knowing the app's protocol.
 */
export class Prober {
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #targets: () => Iterable<string>;
  readonly #health = new Map<string, TargetHealth>();
  readonly #inFlight = new Set<string>();
  #timer: NodeJS.Timeout | null = null;

  readonly #changed: ((target: string, health: TargetHealth) => void) | null;
  readonly #leadership: Leadership;

  /**
   * `targets` lists the current `host:port` strings; it is called each round. `changed` hears when
   * a target's readiness or reason changes. Only the lease holder probes (one prober per store).
   */
  constructor(
    intervalMs: number,
    targets: () => Iterable<string>,
    leadership: Leadership,
    changed: ((target: string, health: TargetHealth) => void) | null = null,
  ) {
    this.#changed = changed;
    this.#leadership = leadership;
    this.#intervalMs = intervalMs;
    // A probe never outlives its round, so rounds cannot pile up.
    this.#timeoutMs = Math.min(intervalMs || 2000, 2000);
    this.#targets = targets;
  }

  health(target: string): TargetHealth {
    return this.#health.get(target) ?? NOT_PROBED;
  }

  start(): void {
    // 0: probing off (a control plane that must never connect to fork targets, and tests whose targets are not on this machine).
    if (this.#timer !== null || this.#intervalMs === 0) return;
    this.#timer = setInterval(() => void this.round(), this.#intervalMs);
    this.#timer.unref();
    void this.round();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Probes every current target once (forgetting targets no sandbox names any more); resolves when all answered. */
  async round(): Promise<void> {
    if (!this.#leadership.leading) return;
    const current = new Set(this.#targets());
    for (const target of this.#health.keys()) if (!current.has(target)) this.#health.delete(target);
    await Promise.all([...current].map((target) => this.probe(target)));
  }

  /** Probes the targets not seen before, now. */
  kick(targets: Iterable<string>): void {
    if (this.#intervalMs === 0 || !this.#leadership.leading) return;
    for (const target of targets) if (!this.#health.has(target)) void this.probe(target);
  }

  async probe(target: string): Promise<void> {
    if (this.#inFlight.has(target)) return;
    const parsed = parseHostPort(target);
    if (parsed === undefined) return;
    this.#inFlight.add(target);
    const host = parsed.host.startsWith('[') ? parsed.host.slice(1, -1) : parsed.host;
    const result = await tcpCheck(host, parsed.port, this.#timeoutMs);
    this.#inFlight.delete(target);
    const previous = this.#health.get(target);
    const health = Object.freeze({ ready: result === null, reason: result, checkedAt: Date.now() });
    this.#health.set(target, health);
    if (this.#changed !== null && (previous === undefined || previous.reason !== result)) this.#changed(target, health);
  }
}

/** Resolves null when `host:port` accepts a TCP connection, else the reason. */
function tcpCheck(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (reason: string | null): void => {
      socket.removeAllListeners();
      socket.on('error', () => {}); // a late error after destroy must not become an uncaught exception
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(timeoutMs, () => done(`connect timeout after ${timeoutMs}ms`));
    socket.once('connect', () => done(null));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}
