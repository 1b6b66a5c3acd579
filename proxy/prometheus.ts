// Prometheus exposition of the sidecar's counters, loaded on the first scrape, so a sidecar nobody scrapes never loads prom-client (measured: ~2.5 MB RSS).
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { DECISION_NAMES, type Stats } from './metrics.js';

export function createRegistry(stats: Stats): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'laneway_sidecar_' });
  new Counter({
    name: 'laneway_requests_total',
    help: 'Requests by routing decision (baseline, sandbox, error, fallback) and protocol',
    labelNames: ['decision', 'protocol'],
    registers: [registry],
    collect() {
      this.reset();
      for (let i = 0; i < DECISION_NAMES.length; i++) {
        this.inc({ decision: DECISION_NAMES[i], protocol: 'http1' }, stats.requests[i] ?? 0);
        this.inc({ decision: DECISION_NAMES[i], protocol: 'h2' }, stats.h2Requests[i] ?? 0);
      }
    },
  });
  new Counter({
    name: 'laneway_upstream_errors_total',
    help: 'Upstream failures by Laneway error code',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [code, n] of stats.upstreamErrors) this.inc({ code }, n);
    },
  });
  new Counter({
    name: 'laneway_translated_requests_total',
    help: 'Requests the sidecar translated between the client\'s protocol and the upstream\'s (from, to)',
    labelNames: ['from', 'to'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ from: 'http1', to: 'h2c' }, stats.translated[0] ?? 0);
      this.inc({ from: 'h2c', to: 'http1' }, stats.translated[1] ?? 0);
    },
  });
  gauge(registry, 'laneway_open_connections', 'Open client connections to the sidecar listeners', () => stats.openConnections);
  counter(registry, 'laneway_dropped_connections_total', 'Client connections closed on accept because --max-connections were open', () => stats.droppedConnections);
  counter(registry, 'laneway_h2_reset_floods_total', 'HTTP/2 connections closed for resetting streams too fast (rapid reset)', () => stats.h2ResetFloods);
  gauge(registry, 'laneway_route_table_revision', 'Revision of the route table in use', () => stats.tableRevision);
  gauge(registry, 'laneway_route_table_routes', 'Routes in the route table in use', () => stats.tableRoutes);
  counter(registry, 'laneway_route_table_rejected_total', 'Route tables or deltas rejected (the last good table was kept)', () => stats.tableRejected);
  counter(registry, 'laneway_route_table_updates_total', 'Route tables or deltas applied', () => stats.tableUpdates);
  counter(registry, 'laneway_tunnels_total', 'Upgrade (WebSocket) tunnels opened', () => stats.tunnels);
  const reporter = stats.reporter;
  if (reporter !== null) {
    counter(registry, 'laneway_capture_records_total', 'Captured exchanges and probe sightings queued for the control plane', () => reporter.queued);
    counter(registry, 'laneway_capture_dropped_total', 'Captured exchanges and sightings dropped because the queue was full; never requests', () => reporter.dropped);
    counter(registry, 'laneway_capture_lost_total', 'Queued exchanges and sightings lost with a batch the control plane did not accept', () => reporter.lost);
    counter(registry, 'laneway_capture_batches_total', 'Report batches the control plane accepted', () => reporter.sent);
    counter(registry, 'laneway_capture_batch_failures_total', 'Report batches that failed (network, timeout, refused)', () => reporter.failed);
  }
  return registry;
}

function gauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

function counter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
