// Prometheus metrics of the control plane: sandboxes, watchers, pushes and push latency.
import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import type { PushMetrics } from './push.js';

export interface Sources {
  sandboxes(): number;
  watchers(): number;
  revision(): number;
}

/**
 * One prom-client registry per app (not the global one), so several control planes in one process
 * (the tests) do not collide. Label children are resolved once here, so the push loop increments a
 * counter without hashing label values.
 */
export class Metrics implements PushMetrics {
  readonly registry = new PromRegistry();
  readonly #written: Record<'snapshot' | 'upsert' | 'delete', Counter.Internal>;
  readonly #dropped: Counter;
  readonly #changes: Record<'apply' | 'delete' | 'expire', Counter.Internal>;
  readonly #pushSeconds: Histogram;

  constructor(sources: Sources) {
    const registers = [this.registry];
    new Gauge({ name: 'laneway_cp_sandboxes', help: 'Sandboxes currently stored', registers, collect() { this.set(sources.sandboxes()); } });
    new Gauge({ name: 'laneway_cp_watchers', help: 'Open route watch streams', registers, collect() { this.set(sources.watchers()); } });
    new Gauge({ name: 'laneway_cp_revision', help: 'Current global revision', registers, collect() { this.set(sources.revision()); } });
    const written = new Counter({
      name: 'laneway_cp_push_events_total',
      help: 'SSE events written to watchers (one per watcher), by event type',
      labelNames: ['event'],
      registers,
    });
    this.#written = { snapshot: written.labels('snapshot'), upsert: written.labels('upsert'), delete: written.labels('delete') };
    this.#dropped = new Counter({
      name: 'laneway_cp_watchers_dropped_total',
      help: 'Watch streams cut because the client did not read fast enough (it resumes with Last-Event-ID)',
      registers,
    });
    const changes = new Counter({ name: 'laneway_cp_changes_total', help: 'Committed changes, by operation', labelNames: ['op'], registers });
    this.#changes = { apply: changes.labels('apply'), delete: changes.labels('delete'), expire: changes.labels('expire') };
    this.#pushSeconds = new Histogram({
      name: 'laneway_cp_push_duration_seconds',
      help: 'From the start of a change\'s durable commit (fsync included) to its events written to every watcher socket',
      // The target is p99 ≤ 50 ms to 1,000 watchers; resolve the low milliseconds finely.
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers,
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'laneway_cp_' });
  }

  written(kind: 'snapshot' | 'upsert' | 'delete', count: number): void {
    this.#written[kind].inc(count);
  }

  dropped(): void {
    this.#dropped.inc();
  }

  changed(op: 'apply' | 'delete' | 'expire', startedAt: number): void {
    this.#changes[op].inc();
    this.#pushSeconds.observe((performance.now() - startedAt) / 1000);
  }
}
