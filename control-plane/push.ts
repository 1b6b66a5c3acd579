// Route tables per workload, versioned: the current snapshot, a bounded delta log for Last-Event-ID resume, and SSE fan-out to watchers.
import type { ServerResponse } from 'node:http';
import type { Route, RouteSnapshot } from '../proxy/route-table.js';

/** One workload's part of a change. A sandbox forks a workload at most once, so a change has at most one delta per workload. */
export type WorkloadDelta =
  | { readonly workload: string; readonly type: 'upsert'; readonly route: Route }
  | { readonly workload: string; readonly type: 'delete'; readonly route: Route };

export interface PushMetrics {
  /** frames of one kind written to `count` watchers */
  written(kind: 'snapshot' | 'upsert' | 'delete', count: number): void;
  dropped(): void;
}

/** A serialized SSE event: built once per change and workload, written to every watcher as is. */
interface Frame {
  readonly revision: number;
  readonly text: string;
  readonly kind: 'upsert' | 'delete';
}

/**
 * A watcher whose socket has this much unsent data is too slow to keep up; it is disconnected and
 * resumes with Last-Event-ID (or gets a fresh snapshot), instead of us buffering without bound.
 */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const HEARTBEAT = ': hb\n\n';

class Channel {
  revision = 0;
  /** sandbox name → its route for this workload */
  readonly routes = new Map<string, Route>();
  /** resumes from any revision in [floor, revision] are served from `log` */
  floor = 0;
  readonly log: Frame[] = [];
  readonly watchers = new Set<ServerResponse>();
  /** cached, invalidated by each change: 1,000 watchers connecting serialize the snapshot once */
  #snapshotJson: string | null = null;
  readonly workload: string;

  constructor(workload: string) {
    this.workload = workload;
  }

  snapshotJson(): string {
    if (this.#snapshotJson === null) {
      const routes = [...this.routes.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const snapshot: RouteSnapshot = { workload: this.workload, revision: this.revision, routes };
      this.#snapshotJson = JSON.stringify(snapshot);
    }
    return this.#snapshotJson;
  }

  invalidate(): void {
    this.#snapshotJson = null;
  }
}

export interface PushOptions {
  readonly deltaLogSize: number;
  readonly heartbeatIntervalMs: number;
  readonly maxWatchers: number;
  readonly metrics: PushMetrics;
}

export class Push {
  readonly #channels = new Map<string, Channel>();
  readonly #options: PushOptions;
  #watcherCount = 0;
  #heartbeat: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: PushOptions) {
    this.#options = options;
  }

  get watcherCount(): number {
    return this.#watcherCount;
  }

  /** Loads the state recovered from the store; the delta log starts empty (older resumes get a snapshot). */
  restore(workloadRevisions: ReadonlyMap<string, number>, routes: Iterable<{ workload: string; route: Route }>): void {
    for (const [workload, revision] of workloadRevisions) {
      const channel = this.#channel(workload);
      channel.revision = revision;
      channel.floor = revision;
    }
    for (const { workload, route } of routes) this.#channel(workload).routes.set(route.sandbox, route);
  }

  /** The snapshot body (RouteSnapshot JSON), cached; revision 0 and no routes for a workload never touched. */
  snapshotJson(workload: string): string {
    const channel = this.#channels.get(workload);
    if (channel !== undefined) return channel.snapshotJson();
    return JSON.stringify({ workload, revision: 0, routes: [] } satisfies RouteSnapshot);
  }

  revisionOf(workload: string): number {
    return this.#channels.get(workload)?.revision ?? 0;
  }

  /**
   * Applies one durable change and writes its events. Call only after the store committed it: the
   * contract is "acknowledged once durable, pushed right after".
   */
  publish(revision: number, deltas: readonly WorkloadDelta[]): void {
    const { metrics, deltaLogSize } = this.#options;
    for (const delta of deltas) {
      const channel = this.#channel(delta.workload);
      let data: string;
      if (delta.type === 'upsert') {
        channel.routes.set(delta.route.sandbox, delta.route);
        data = JSON.stringify({ revision, route: delta.route });
      } else {
        channel.routes.delete(delta.route.sandbox);
        data = JSON.stringify({ revision, key: delta.route.key });
      }
      channel.revision = revision;
      channel.invalidate();
      const frame: Frame = { revision, kind: delta.type, text: `id: ${revision}\nevent: ${delta.type}\ndata: ${data}\n\n` };
      channel.log.push(frame);
      if (channel.log.length > deltaLogSize) channel.floor = (channel.log.shift() as Frame).revision;
      if (channel.watchers.size === 0) continue;
      for (const res of channel.watchers) this.#write(channel, res, frame.text);
      metrics.written(delta.type, channel.watchers.size);
    }
  }

  /**
   * Starts a watch stream on `res` (already answered 200 with SSE headers). With a `lastEventId`
   * whose following deltas are all still in the log, sends only those; otherwise a snapshot. Nothing
   * awaits between reading the channel and registering the watcher, so no change can fall in between.
   */
  watch(workload: string, res: ServerResponse, lastEventId: number | undefined): void {
    const channel = this.#channel(workload);
    const { metrics } = this.#options;
    if (lastEventId !== undefined && lastEventId >= channel.floor && lastEventId <= channel.revision) {
      let first = channel.log.length;
      while (first > 0 && (channel.log[first - 1] as Frame).revision > lastEventId) first--;
      for (let i = first; i < channel.log.length; i++) {
        const frame = channel.log[i] as Frame;
        res.write(frame.text);
        metrics.written(frame.kind, 1);
      }
    } else {
      res.write(`id: ${channel.revision}\nevent: snapshot\ndata: ${channel.snapshotJson()}\n\n`);
      metrics.written('snapshot', 1);
    }
    channel.watchers.add(res);
    this.#watcherCount++;
    res.once('close', () => this.#unwatch(channel, res));
  }

  hasCapacity(): boolean {
    return !this.#closed && this.#watcherCount < this.#options.maxWatchers;
  }

  /** One shared timer for every watcher (no per-stream timers); `: hb` keeps idle proxies from cutting the stream. */
  start(): void {
    if (this.#heartbeat !== null) return;
    this.#heartbeat = setInterval(() => {
      for (const channel of this.#channels.values()) {
        for (const res of channel.watchers) this.#write(channel, res, HEARTBEAT);
      }
    }, this.#options.heartbeatIntervalMs);
    this.#heartbeat.unref();
  }

  /** Ends every stream (watchers reconnect elsewhere or later); no new ones are accepted. */
  close(): void {
    this.#closed = true;
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    for (const channel of this.#channels.values()) {
      for (const res of channel.watchers) res.end();
    }
  }

  #write(channel: Channel, res: ServerResponse, text: string): void {
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      this.#options.metrics.dropped();
      this.#unwatch(channel, res);
      res.destroy();
      return;
    }
    res.write(text);
  }

  #unwatch(channel: Channel, res: ServerResponse): void {
    if (!channel.watchers.delete(res)) return;
    this.#watcherCount--;
    // A channel for a workload nothing ever touched exists only for its watchers; forget it with them,
    // so clients watching made-up names cannot grow memory.
    if (channel.watchers.size === 0 && channel.revision === 0 && channel.routes.size === 0) {
      this.#channels.delete(channel.workload);
    }
  }

  #channel(workload: string): Channel {
    let channel = this.#channels.get(workload);
    if (channel === undefined) {
      channel = new Channel(workload);
      this.#channels.set(workload, channel);
    }
    return channel;
  }
}
