// The console's change stream (GET /v1/events): one SSE stream telling open pages what changed, so they refetch instead of polling.
import type { ServerResponse } from 'node:http';
import type { ChangeEvent, RunEvent, SidecarEvent } from '../model/console.js';
import type { WorkloadDelta } from './route-cache.js';

/** Console streams open at once, at most (each is a browser tab; sidecars use the route watch, not this). */
export const EVENT_STREAMS_MAX = 256;
/** A stream whose socket has this much unsent data is cut (the page reconnects and refetches). */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * Events carry what changed, not the new state: the page refetches the resource it shows (one GET),
 * which keeps one source of truth (the REST API, with its auth and shapes) and this stream tiny.
 */
export class ConsoleEvents {
  readonly #streams = new Set<ServerResponse>();
  #heartbeat: NodeJS.Timeout | null = null;
  readonly #heartbeatMs: number;
  #closed = false;

  constructor(heartbeatMs: number) {
    this.#heartbeatMs = heartbeatMs;
  }

  get size(): number {
    return this.#streams.size;
  }

  hasCapacity(): boolean {
    return !this.#closed && this.#streams.size < EVENT_STREAMS_MAX;
  }

  /** `res` has its headers flushed; it gets a `hello` event now so the page knows it is live. */
  add(res: ServerResponse): void {
    this.#streams.add(res);
    res.once('close', () => this.#streams.delete(res));
    this.#write(res, 'event: hello\ndata: {}\n\n');
    if (this.#heartbeat === null) {
      this.#heartbeat = setInterval(() => {
        for (const stream of this.#streams) this.#write(stream, ': hb\n\n');
      }, this.#heartbeatMs);
      this.#heartbeat.unref();
    }
  }

  /** A committed change (the registry's `published`). */
  changed(revision: number, deltas: readonly WorkloadDelta[]): void {
    if (this.#streams.size === 0) return;
    const event: ChangeEvent = {
      revision,
      workloads: [...new Set(deltas.map((d) => d.workload))],
      sandboxes: [...new Set(deltas.map((d) => d.route.sandbox))],
    };
    this.#broadcast(`id: ${revision}\nevent: change\ndata: ${JSON.stringify(event)}\n\n`);
  }

  sidecar(event: SidecarEvent): void {
    if (this.#streams.size === 0) return;
    this.#broadcast(`event: sidecar\ndata: ${JSON.stringify(event)}\n\n`);
  }

  run(event: RunEvent): void {
    if (this.#streams.size === 0) return;
    this.#broadcast(`event: run\ndata: ${JSON.stringify(event)}\n\n`);
  }

  close(): void {
    this.#closed = true;
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    for (const stream of this.#streams) stream.end();
    this.#streams.clear();
  }

  #broadcast(text: string): void {
    for (const stream of this.#streams) this.#write(stream, text);
  }

  #write(res: ServerResponse, text: string): void {
    if (res.destroyed) return;
    if ((res.socket?.writableLength ?? 0) > MAX_BUFFERED_BYTES) {
      res.destroy();
      return;
    }
    res.write(text);
  }
}
