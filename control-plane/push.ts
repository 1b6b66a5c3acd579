// Route tables per workload, versioned: the current snapshot, a bounded delta log for Last-Event-ID resume, and SSE fan-out to watchers.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Route, RouteSnapshot } from '../model/route-table.js';

/** One workload's part of a change. A sandbox forks a workload at most once, so a change has at most one delta per workload. */
export type WorkloadDelta =
  | { readonly workload: string; readonly type: 'upsert'; readonly route: Route }
  | { readonly workload: string; readonly type: 'delete'; readonly route: Route };

export interface PushMetrics {
  /** frames of one kind written to `count` watchers */
  written(kind: 'snapshot' | 'upsert' | 'delete', count: number): void;
  dropped(): void;
}

/**
 * A serialized SSE event, built once per change and workload and written to every watcher as is:
 * `chunk` is the event already framed as an HTTP/1.1 chunk (RFC 9112 §7.1) and encoded to bytes.
 */
class Frame {
  readonly revision: number;
  readonly kind: 'snapshot' | 'upsert' | 'delete';
  readonly text: string;
  readonly chunk: Buffer;

  constructor(revision: number, kind: 'snapshot' | 'upsert' | 'delete', data: string) {
    this.revision = revision;
    this.kind = kind;
    this.text = `id: ${revision}\nevent: ${kind}\ndata: ${data}\n\n`;
    this.chunk = toChunk(this.text);
  }
}

function toChunk(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`, 'latin1'), body, Buffer.from('\r\n', 'latin1')]);
}

/**
 * A watcher whose socket has this much unsent data is too slow to keep up; it is disconnected and
 * resumes with Last-Event-ID (or gets a fresh snapshot), instead of us buffering without bound.
 */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const HEARTBEAT = ': hb\n\n';
const HEARTBEAT_CHUNK = toChunk(HEARTBEAT);

/**
 * One open stream. Events go straight to the socket as pre-framed chunks: one `write` of one shared
 * Buffer per watcher, instead of `res.write(string)`, which encodes the string and builds a chunk
 * header per watcher and issues a three-buffer writev. The response's own chunked state stays
 * consistent because every byte we add is a whole chunk, and `res.end()` still writes the
 * terminating `0\r\n\r\n`. (A/B on 1,000 sockets: see README "Push latency".)
 */
class Watcher {
  readonly res: ServerResponse;
  readonly socket: Socket;
  /** HTTP/1.0 clients get an unframed, close-delimited body: write through the response for them */
  readonly chunked: boolean;

  constructor(res: ServerResponse) {
    this.res = res;
    this.socket = res.socket as Socket;
    this.chunked = res.chunkedEncoding;
  }

  /** false when the socket is gone or too far behind */
  send(text: string, chunk: Buffer): boolean {
    const socket = this.socket;
    if (socket.destroyed || socket.writableLength > MAX_BUFFERED_BYTES) return false;
    if (this.chunked) socket.write(chunk);
    else this.res.write(text);
    return true;
  }
}

class Channel {
  revision = 0;
  /** sandbox name → its route for this workload */
  readonly routes = new Map<string, Route>();
  /** resumes from any revision in [floor, revision] are served from `log` */
  floor = 0;
  readonly log: Frame[] = [];
  readonly watchers = new Set<Watcher>();
  /** cached, invalidated by each change: 1,000 watchers connecting serialize the snapshot once */
  #snapshotJson: string | null = null;
  #snapshotFrame: Frame | null = null;
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

  snapshotFrame(): Frame {
    if (this.#snapshotFrame === null) this.#snapshotFrame = new Frame(this.revision, 'snapshot', this.snapshotJson());
    return this.#snapshotFrame;
  }

  invalidate(): void {
    this.#snapshotJson = null;
    this.#snapshotFrame = null;
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

  /** workloads with state or watchers (for the leak test: watching made-up names must not grow it) */
  get channelCount(): number {
    return this.#channels.size;
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
      const frame = new Frame(revision, delta.type, data);
      channel.log.push(frame);
      if (channel.log.length > deltaLogSize) channel.floor = (channel.log.shift() as Frame).revision;
      if (channel.watchers.size === 0) continue;
      let written = 0;
      for (const watcher of channel.watchers) {
        if (watcher.send(frame.text, frame.chunk)) written++;
        else this.#drop(channel, watcher);
      }
      metrics.written(delta.type, written);
    }
  }

  /**
   * Starts a watch stream on `res` (headers already flushed). With a `lastEventId` whose following
   * deltas are all still in the log, sends only those; otherwise a snapshot. Nothing awaits between
   * reading the channel and registering the watcher, so no change can fall in between.
   */
  watch(workload: string, res: ServerResponse, lastEventId: number | undefined): void {
    const channel = this.#channel(workload);
    const { metrics } = this.#options;
    const watcher = new Watcher(res);
    if (lastEventId !== undefined && lastEventId >= channel.floor && lastEventId <= channel.revision) {
      let first = channel.log.length;
      while (first > 0 && (channel.log[first - 1] as Frame).revision > lastEventId) first--;
      for (let i = first; i < channel.log.length; i++) {
        const frame = channel.log[i] as Frame;
        watcher.send(frame.text, frame.chunk);
        metrics.written(frame.kind as 'upsert' | 'delete', 1);
      }
    } else {
      const frame = channel.snapshotFrame();
      watcher.send(frame.text, frame.chunk);
      metrics.written('snapshot', 1);
    }
    channel.watchers.add(watcher);
    this.#watcherCount++;
    res.once('close', () => this.#unwatch(channel, watcher));
  }

  hasCapacity(): boolean {
    return !this.#closed && this.#watcherCount < this.#options.maxWatchers;
  }

  /** One shared timer for every watcher (no per-stream timers); `: hb` keeps idle proxies from cutting the stream. */
  start(): void {
    if (this.#heartbeat !== null) return;
    this.#heartbeat = setInterval(() => {
      for (const channel of this.#channels.values()) {
        for (const watcher of channel.watchers) if (!watcher.send(HEARTBEAT, HEARTBEAT_CHUNK)) this.#drop(channel, watcher);
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
      for (const watcher of channel.watchers) watcher.res.end();
    }
  }

  /** A watcher that cannot take more (gone, or a slow reader past the buffer cap) is cut; it resumes with Last-Event-ID. */
  #drop(channel: Channel, watcher: Watcher): void {
    if (!watcher.socket.destroyed) this.#options.metrics.dropped();
    this.#unwatch(channel, watcher);
    watcher.res.destroy();
  }

  #unwatch(channel: Channel, watcher: Watcher): void {
    if (!channel.watchers.delete(watcher)) return;
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
