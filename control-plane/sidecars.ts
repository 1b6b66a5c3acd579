// Which sidecars watch which workload, since when, and the revision each last acknowledged: what the console's workloads page shows.
import { REPLICA_MAX_CHARS, type SidecarEvent, type SidecarView } from '../model/console.js';

interface Entry {
  readonly replica: string;
  readonly address: string;
  readonly connectedAt: number;
  readonly resumedFrom: number | null;
  acknowledged: number | null;
  acknowledgedAt: number | null;
  /** open watch streams under this name (a reconnect may overlap the old stream's close) */
  streams: number;
}

/** A replica name as sent (printable ASCII, REPLICA_MAX_CHARS at most), or null to use the peer address instead. */
export function replicaName(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  const name = header.trim();
  if (name === '' || name.length > REPLICA_MAX_CHARS || !/^[\x21-\x7e]+$/.test(name)) return null;
  return name;
}

/**
 * Bounded by the watch streams themselves (Push's --max-watchers): an entry exists only while its
 * sidecar has a stream open, so acknowledgements from a replica that is not watching are ignored.
 */
export class Sidecars {
  /** workload → replica → entry */
  readonly #byWorkload = new Map<string, Map<string, Entry>>();
  readonly #changed: (event: SidecarEvent) => void;

  constructor(changed: (event: SidecarEvent) => void) {
    this.#changed = changed;
  }

  /** A watch stream opened; returns what to call when it closes. */
  connected(workload: string, replica: string, address: string, resumedFrom: number | null): () => void {
    let replicas = this.#byWorkload.get(workload);
    if (replicas === undefined) this.#byWorkload.set(workload, (replicas = new Map()));
    const existing = replicas.get(replica);
    if (existing !== undefined) existing.streams++;
    else replicas.set(replica, { replica, address, connectedAt: Date.now(), resumedFrom, acknowledged: null, acknowledgedAt: null, streams: 1 });
    this.#changed({ workload, replica, state: 'connected' });
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const entry = replicas.get(replica);
      if (entry === undefined || --entry.streams > 0) return;
      replicas.delete(replica);
      if (replicas.size === 0 && this.#byWorkload.get(workload) === replicas) this.#byWorkload.delete(workload);
      this.#changed({ workload, replica, state: 'disconnected' });
    };
  }

  /** A sidecar says it applied `revision`; false when that replica has no open stream for the workload. */
  acknowledged(workload: string, replica: string, revision: number): boolean {
    const entry = this.#byWorkload.get(workload)?.get(replica);
    if (entry === undefined) return false;
    // Acknowledgements may arrive out of order (one retried, the next not): the highest one stands.
    if (entry.acknowledged === null || revision > entry.acknowledged) {
      entry.acknowledged = revision;
      entry.acknowledgedAt = Date.now();
      this.#changed({ workload, replica, state: 'acknowledged' });
    }
    return true;
  }

  workloads(): IterableIterator<string> {
    return this.#byWorkload.keys();
  }

  /** The sidecars of `workload`, by replica name; `revision` is the workload's current revision (for `lag`). */
  of(workload: string, revision: number): SidecarView[] {
    const replicas = this.#byWorkload.get(workload);
    if (replicas === undefined) return [];
    return [...replicas.values()]
      .map((e) => ({
        replica: e.replica,
        address: e.address,
        connectedAt: new Date(e.connectedAt).toISOString(),
        resumedFrom: e.resumedFrom,
        acknowledged: e.acknowledged,
        acknowledgedAt: e.acknowledgedAt === null ? null : new Date(e.acknowledgedAt).toISOString(),
        lag: Math.max(0, revision - (e.acknowledged ?? 0)),
      }))
      .sort((a, b) => (a.replica < b.replica ? -1 : a.replica > b.replica ? 1 : 0));
  }
}
