// The sidecar's half of the propagation doctor: probes the control plane announced (SSE `probe`), and the sightings of
// them it reports. Idle cost is one size check per request; work happens only while a probe is active (seconds).
import type { IncomingMessage } from 'node:http';
import { PROBE_KEY_PREFIX, type ProbeAnnouncement } from '../model/capture.js';
import type { Reporter } from './reporter.js';

/** Probes a sidecar tracks at once; more announcements replace the oldest. */
export const MAX_ACTIVE_PROBES = 16;
/** Requests without the key or the trace one sidecar reports per probe: a busy pod must not flood the report. */
export const UNKEYED_SIGHTINGS_PER_PROBE = 20;

interface Active {
  readonly probe: ProbeAnnouncement;
  unkeyed: number;
}

export class ActiveProbes {
  readonly #byKey = new Map<string, Active>();
  readonly #workload: string;
  readonly #reporter: Reporter;

  constructor(workload: string, reporter: Reporter) {
    this.#workload = workload;
    this.#reporter = reporter;
  }

  /** false almost always: the forwarder checks this and nothing else. */
  get active(): boolean {
    return this.#byKey.size !== 0;
  }

  arm(probe: ProbeAnnouncement): void {
    if (probe.until <= Date.now() || !probe.key.startsWith(PROBE_KEY_PREFIX)) return;
    if (this.#byKey.size >= MAX_ACTIVE_PROBES) this.#byKey.delete(this.#byKey.keys().next().value as string);
    this.#byKey.set(probe.key, { probe, unkeyed: 0 });
  }

  /**
   * A request arrived while probes are active: it carried a probe's key (`key`), or a probe's trace id
   * in `traceparent` without the key, or neither (then it counts for every active probe, capped: in a
   * quiet mesh, that is the call whose caller dropped both).
   */
  observe(key: string | undefined, req: IncomingMessage): void {
    const now = Date.now();
    for (const [k, active] of this.#byKey) if (active.probe.until <= now) this.#byKey.delete(k);
    if (this.#byKey.size === 0) return;
    const keyed = key === undefined ? undefined : this.#byKey.get(key);
    if (keyed !== undefined) return this.#report(keyed, req, true, traceIdOf(req) === keyed.probe.traceId);
    if (key !== undefined && key.startsWith(PROBE_KEY_PREFIX)) return; // another sidecar's stale or unknown probe
    const traceId = traceIdOf(req);
    for (const active of this.#byKey.values()) {
      if (traceId === active.probe.traceId) return this.#report(active, req, false, true);
    }
    for (const active of this.#byKey.values()) {
      if (active.unkeyed >= UNKEYED_SIGHTINGS_PER_PROBE) continue;
      active.unkeyed++;
      this.#report(active, req, false, false);
    }
  }

  #report(active: Active, req: IncomingMessage, keyed: boolean, traced: boolean): void {
    this.#reporter.sighting({
      probe: active.probe.id,
      workload: this.#workload,
      at: Date.now(),
      keyed,
      traced,
      method: req.method ?? 'GET',
      path: (req.url ?? '/').slice(0, 200),
      peer: req.socket.remoteAddress ?? '',
      local: req.socket.localAddress ?? '',
    });
  }
}

/** The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), lower-case, or undefined. */
export function traceIdOf(req: IncomingMessage): string | undefined {
  const value = req.headers.traceparent;
  if (typeof value !== 'string' || value.length < 55 || value.charCodeAt(2) !== 0x2d) return undefined;
  const id = value.slice(3, 35).toLowerCase();
  return /^[0-9a-f]{32}$/.test(id) && id !== '0'.repeat(32) ? id : undefined;
}
