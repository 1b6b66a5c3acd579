// The control plane's half of the propagation doctor: probe keys registered for a few seconds (announced to every
// sidecar over the watch streams), and the sightings sidecars report while they are active.
import { randomBytes } from 'node:crypto';
import { PROBE_KEY_PREFIX, type ProbeAnnouncement, type ProbeSighting } from '../model/capture.js';

/** How long sidecars report a probe after it is created. */
export const PROBE_ACTIVE_MS = 10_000;
/** How long a probe's sightings are kept to be read. */
export const PROBE_KEEP_MS = 10 * 60_000;
/** Probes active at once; one more is refused (503) until one ends. */
export const MAX_ACTIVE_PROBES = 16;
/** Sightings one probe keeps. */
export const MAX_SIGHTINGS_PER_PROBE = 500;

export interface Probe extends ProbeAnnouncement {
  readonly createdAt: number;
  /** the sandbox whose forks the report should name, if the doctor was asked about one */
  readonly sandbox: string | null;
}

export class ProbeRegistry {
  readonly #probes = new Map<string, { probe: Probe; sightings: ProbeSighting[] }>();

  /** A new probe, or null when MAX_ACTIVE_PROBES are active. */
  create(sandbox: string | null): Probe | null {
    this.#expire();
    const now = Date.now();
    let active = 0;
    for (const { probe } of this.#probes.values()) if (probe.until > now) active++;
    if (active >= MAX_ACTIVE_PROBES) return null;
    const probe: Probe = Object.freeze({
      id: randomBytes(8).toString('hex'),
      // A valid routing key no sandbox has (sandbox keys are generated in base32 without this prefix, or chosen by users: the prefix is refused for them).
      key: `${PROBE_KEY_PREFIX}${randomBytes(10).toString('hex')}`,
      traceId: randomBytes(16).toString('hex'),
      until: now + PROBE_ACTIVE_MS,
      createdAt: now,
      sandbox,
    });
    this.#probes.set(probe.id, { probe, sightings: [] });
    return probe;
  }

  /** Records a sidecar's sighting of an active probe (a second of grace for reports in flight); false when it is not one. */
  sighting(sighting: ProbeSighting): boolean {
    const entry = this.#probes.get(sighting.probe);
    if (entry === undefined || Date.now() > entry.probe.until + 1000 || entry.sightings.length >= MAX_SIGHTINGS_PER_PROBE) return false;
    entry.sightings.push(sighting);
    return true;
  }

  get(id: string): { probe: Probe; sightings: readonly ProbeSighting[] } | undefined {
    this.#expire();
    return this.#probes.get(id);
  }

  #expire(): void {
    const cutoff = Date.now() - PROBE_KEEP_MS;
    for (const [id, { probe }] of this.#probes) if (probe.createdAt < cutoff) this.#probes.delete(id);
  }
}
