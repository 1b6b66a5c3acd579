// The route table in use and where it came from; sources (file, control plane, cache) swap it, the hot path reads it.
import type { Logger } from 'pino';
import { RouteTable } from '../model/route-table.js';
import type { Stats } from './metrics.js';

export class RouteState {
  /** Read on every request; replaced by one assignment so a request never sees half a table. */
  table: RouteTable;
  loaded = false;
  source = 'none';
  loadedAt = 0;
  /** For control-plane sources: whether the watch stream is up; `/routes` shows staleness from it. */
  connected: boolean | undefined = undefined;
  disconnectedAt = 0;
  lastError: string | undefined = undefined;
  readonly workload: string;
  readonly #stats: Stats;
  readonly #log: Logger;

  constructor(workload: string, stats: Stats, log: Logger) {
    this.workload = workload;
    this.table = RouteTable.empty(workload);
    this.#stats = stats;
    this.#log = log;
  }

  /** Installs a new table; returns false (keeping the old one) when it is for another workload. */
  replace(table: RouteTable, source: string): boolean {
    if (table.workload !== this.workload) {
      this.reject(source, `table is for workload ${table.workload}, this sidecar serves ${this.workload}`);
      return false;
    }
    const previous = this.table.revision;
    this.table = table;
    this.loaded = true;
    this.#updated(source);
    this.#log.info({ source, revision: table.revision, previous, routes: table.size }, 'route table installed');
    return true;
  }

  /** The table in use was changed in place by a pushed delta. */
  changed(source: string): void {
    this.#updated(source);
    this.#log.debug({ source, revision: this.table.revision, routes: this.table.size }, 'route table changed');
  }

  #updated(source: string): void {
    this.source = source;
    this.loadedAt = Date.now();
    this.lastError = undefined;
    this.#stats.tableRevision = this.table.revision;
    this.#stats.tableRoutes = this.table.size;
    this.#stats.tableUpdates++;
  }

  /** A bad file or push: counted and logged; the last good table stays in use. */
  reject(source: string, reason: string): void {
    this.lastError = reason;
    this.#stats.tableRejected++;
    this.#log.warn({ source, reason, revision: this.table.revision }, 'route table rejected; keeping the last good one');
  }

  describe(): Record<string, unknown> {
    const now = Date.now();
    return {
      workload: this.workload,
      revision: this.table.revision,
      loaded: this.loaded,
      source: this.source,
      loadedAt: this.loaded ? new Date(this.loadedAt).toISOString() : null,
      ageSeconds: this.loaded ? (now - this.loadedAt) / 1000 : null,
      connected: this.connected ?? null,
      staleSeconds: this.connected === false && this.disconnectedAt ? (now - this.disconnectedAt) / 1000 : 0,
      lastError: this.lastError ?? null,
      routes: this.table.toSnapshot().routes,
    };
  }
}
