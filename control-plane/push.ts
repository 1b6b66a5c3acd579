// SSE fan-out of route-table changes to watching sidecars: encoded frames, per-workload watcher sets, heartbeats, slow-reader cut-off.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { RouteCache, type EventKind, type WorkloadDelta } from './route-cache.js';

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
  readonly kind: EventKind;
  readonly text: string;
  readonly chunk: Buffer;

  constructor(revision: number, kind: EventKind, data: string) {
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

export interface PushOptions {
  readonly deltaLogSize: number;
  readonly heartbeatIntervalMs: number;
  readonly maxWatchers: number;
  readonly metrics: PushMetrics;
  /**
   * Several replicas on one store (etcd): the store's current revision. A client resuming from an id
   * this replica has not reached is asked about: at or below the store's revision, this replica is
   * merely behind (no snapshot, the deltas follow); above it, the id is from another history (a
   * snapshot, as with one process). Undefined with one process (SQLite).
   */
  readonly storeRevision?: () => Promise<number>;
}

function encodeFrame(revision: number, kind: EventKind, data: string): Frame {
  return new Frame(revision, kind, data);
}

/**
 * Owns the route cache (routes, snapshots, delta log) and writes its events to the watchers. Fed
 * by the registry from the store's watch, so it pushes every committed change, whoever made it.
 */
export class Push {
  readonly routes: RouteCache<Frame>;
  /** workload → its open streams; a workload without watchers has no entry */
  readonly #watchers = new Map<string, Set<Watcher>>();
  readonly #options: PushOptions;
  #watcherCount = 0;
  #heartbeat: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: PushOptions) {
    this.#options = options;
    this.routes = new RouteCache(options.deltaLogSize, encodeFrame);
  }

  get watcherCount(): number {
    return this.#watcherCount;
  }

  /** workloads with state or watchers (for the leak test: watching made-up names must not grow it) */
  get channelCount(): number {
    let count = this.routes.size;
    for (const workload of this.#watchers.keys()) if (this.routes.revisionOf(workload) === 0) count++;
    return count;
  }

  /**
   * Applies one committed change to the cache and writes its events. Call in revision order, once
   * the store has it durably: the contract is "acknowledged once durable, pushed right after".
   */
  publish(revision: number, deltas: readonly WorkloadDelta[]): void {
    const { metrics } = this.#options;
    this.routes.seen(revision);
    for (const delta of deltas) {
      const frame = this.routes.apply(revision, delta);
      const watchers = this.#watchers.get(delta.workload);
      if (watchers === undefined) continue;
      let written = 0;
      for (const watcher of watchers) {
        if (watcher.send(frame.text, frame.chunk)) written++;
        else this.#drop(delta.workload, watcher);
      }
      metrics.written(delta.type, written);
    }
  }

  /**
   * Starts a watch stream on `res` (headers already flushed): the deltas after `lastEventId` when
   * they are all still kept, otherwise a snapshot. Nothing awaits between reading the cache and
   * registering the watcher, so no change can fall in between.
   */
  /**
   * Sends an event that is not a route change (the propagation doctor's `probe`) to every watcher of
   * every workload, and to watchers that connect before `until`. No `id:`: it does not move revisions.
   */
  announce(kind: 'probe', data: string, until: number): void {
    const text = `event: ${kind}\ndata: ${data}\n\n`;
    const chunk = toChunk(text);
    const now = Date.now();
    this.#announcements = this.#announcements.filter((a) => a.until > now);
    this.#announcements.push({ text, chunk, until });
    for (const [workload, watchers] of this.#watchers) {
      for (const watcher of watchers) if (!watcher.send(text, chunk)) this.#drop(workload, watcher);
    }
  }

  #announcements: { readonly text: string; readonly chunk: Buffer; readonly until: number }[] = [];

  /** Workloads with at least one sidecar watching (the doctor names the ones a request passed without a sidecar). */
  watchedWorkloads(): string[] {
    return [...this.#watchers.keys()];
  }

  watch(workload: string, res: ServerResponse, lastEventId: number | undefined): void {
    const storeRevision = this.#options.storeRevision;
    if (storeRevision !== undefined && lastEventId !== undefined && lastEventId > this.routes.revision) {
      // Asked first, then the catch-up is read and the watcher registered with nothing awaited in between.
      storeRevision().then(
        (revision) => this.#attach(workload, res, lastEventId, lastEventId <= revision),
        // The store is away: keep the client's table (fail-static) rather than send it back in time.
        () => this.#attach(workload, res, lastEventId, true),
      );
      return;
    }
    this.#attach(workload, res, lastEventId, false);
  }

  #attach(workload: string, res: ServerResponse, lastEventId: number | undefined, clientAhead: boolean): void {
    if (res.destroyed || this.#closed) return;
    const { metrics } = this.#options;
    const watcher = new Watcher(res);
    const catchup = this.routes.catchup(workload, lastEventId, clientAhead);
    if (catchup.kind === 'deltas') {
      for (const frame of catchup.events) {
        watcher.send(frame.text, frame.chunk);
        metrics.written(frame.kind as 'upsert' | 'delete', 1);
      }
    } else {
      watcher.send(catchup.event.text, catchup.event.chunk);
      metrics.written('snapshot', 1);
    }
    const now = Date.now();
    for (const a of this.#announcements) if (a.until > now) watcher.send(a.text, a.chunk);
    let watchers = this.#watchers.get(workload);
    if (watchers === undefined) this.#watchers.set(workload, (watchers = new Set()));
    watchers.add(watcher);
    this.#watcherCount++;
    res.once('close', () => this.#unwatch(workload, watcher));
  }

  hasCapacity(): boolean {
    return !this.#closed && this.#watcherCount < this.#options.maxWatchers;
  }

  /** One shared timer for every watcher (no per-stream timers); `: hb` keeps idle proxies from cutting the stream. */
  start(): void {
    if (this.#heartbeat !== null) return;
    this.#heartbeat = setInterval(() => {
      for (const [workload, watchers] of this.#watchers) {
        for (const watcher of watchers) if (!watcher.send(HEARTBEAT, HEARTBEAT_CHUNK)) this.#drop(workload, watcher);
      }
    }, this.#options.heartbeatIntervalMs);
    this.#heartbeat.unref();
  }

  /** Ends every stream (watchers reconnect elsewhere or later); no new ones are accepted. */
  close(): void {
    this.#closed = true;
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    for (const watchers of this.#watchers.values()) {
      for (const watcher of watchers) watcher.res.end();
    }
  }

  /** A watcher that cannot take more (gone, or a slow reader past the buffer cap) is cut; it resumes with Last-Event-ID. */
  #drop(workload: string, watcher: Watcher): void {
    if (!watcher.socket.destroyed) this.#options.metrics.dropped();
    this.#unwatch(workload, watcher);
    watcher.res.destroy();
  }

  #unwatch(workload: string, watcher: Watcher): void {
    const watchers = this.#watchers.get(workload);
    if (watchers === undefined || !watchers.delete(watcher)) return;
    this.#watcherCount--;
    if (watchers.size === 0) this.#watchers.delete(workload);
  }
}
