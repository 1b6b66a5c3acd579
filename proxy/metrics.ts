// Sidecar counters: plain integers bumped on the hot path; proxy/prometheus.ts turns them into Prometheus text when scraped.
import type { ReporterCounters } from './reporter.js';

/** Where a request ended up; the index into `Stats.requests`. */
export const Decision = Object.freeze({ baseline: 0, sandbox: 1, error: 2, fallback: 3 });
export const DECISION_NAMES = ['baseline', 'sandbox', 'error', 'fallback'] as const;

/**
 * Mutable counters owned by the sidecar. Hot-path code increments fields; prom-client reads them in
 * `collect()` at scrape time, so a request pays one integer add instead of a label-set hash lookup.
 */
export class Stats {
  readonly requests = [0, 0, 0, 0];
  readonly h2Requests = [0, 0, 0, 0];
  readonly upstreamErrors = new Map<string, number>();
  /** requests translated between protocols: [HTTP/1.1 client → h2c upstream, h2c client → HTTP/1.1 upstream] */
  readonly translated = [0, 0];
  openConnections = 0;
  /** connections closed on accept because --max-connections were open */
  droppedConnections = 0;
  /** HTTP/2 connections closed for resetting streams faster than H2_RESET_RATE allows */
  h2ResetFloods = 0;
  inFlight = 0;
  /** the traffic reporter's counters (capture, doctor); null without a control plane */
  reporter: ReporterCounters | null = null;
  tableRevision = 0;
  tableRoutes = 0;
  tableRejected = 0;
  tableUpdates = 0;
  tunnels = 0;

  upstreamError(code: string): void {
    this.upstreamErrors.set(code, (this.upstreamErrors.get(code) ?? 0) + 1);
  }
}
