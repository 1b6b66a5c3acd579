// Captured traffic per sandbox: a bounded ring (count and bytes, oldest out first) fed by the sidecars' reports, read by
// GET …/traffic and followed over SSE. In memory by design: it is evidence for the lane's next few minutes, not a log.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { CapturedExchange, TrafficEntry } from '../model/capture.js';

export type { TrafficEntry };

/** Entries one sandbox's ring keeps, at most. */
export const TRAFFIC_RING_ENTRIES = 1000;
/** Bytes (as JSON) one sandbox's ring keeps, at most. */
export const TRAFFIC_RING_BYTES = 8 * 1024 * 1024;
/** Sandboxes with a ring at once; the least recently written one goes first. */
export const TRAFFIC_MAX_RINGS = 256;
/** Entries one GET returns, at most (and by default). */
export const TRAFFIC_PAGE_MAX = 1000;
export const TRAFFIC_PAGE_DEFAULT = 100;
/** A follower with this much unsent data is cut (it resumes with Last-Event-ID). */
const FOLLOW_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

interface Stored {
  readonly entry: TrafficEntry;
  readonly json: string;
}

export interface TrafficFilter {
  readonly workload?: string;
  /** 1–5: the status class (2 = 2xx); 0: exchanges the sidecar answered with its own error or cut */
  readonly statusClass?: number;
  /** entries after this sequence number */
  readonly afterSeq?: number;
  /** entries at or after this epoch ms */
  readonly sinceMs?: number;
  readonly limit?: number;
}

class Ring {
  readonly items: Stored[] = [];
  bytes = 0;
  nextSeq = 1;
  /** open follow streams and what each asked for */
  readonly followers = new Map<ServerResponse, TrafficFilter>();
}

function matches(entry: TrafficEntry, filter: TrafficFilter): boolean {
  if (filter.afterSeq !== undefined && entry.seq <= filter.afterSeq) return false;
  if (entry.kind === 'dropped') return (filter.workload === undefined || entry.workload === filter.workload) && (filter.sinceMs === undefined || entry.at >= filter.sinceMs);
  const e = entry.exchange;
  if (filter.workload !== undefined && e.workload !== filter.workload) return false;
  if (filter.sinceMs !== undefined && e.at < filter.sinceMs) return false;
  if (filter.statusClass !== undefined) {
    const cls = e.error !== undefined && (e.status === 0 || e.status >= 500) ? 0 : Math.floor(e.status / 100);
    if (filter.statusClass === 0 ? cls !== 0 && e.error === undefined : cls !== filter.statusClass) return false;
  }
  return true;
}

/** Follow streams get a comment this often, so idle proxies keep them open. */
export const TRAFFIC_HEARTBEAT_MS = 15_000;

export class TrafficStore {
  /** `<sandbox>#<createdAt>` → ring: a sandbox deleted and created again starts empty */
  readonly #rings = new LRUCache<string, Ring>({ max: TRAFFIC_MAX_RINGS, dispose: (ring) => ring.followers.forEach((_filter, res) => res.end()) });
  readonly #heartbeat = setInterval(() => {
    for (const ring of this.#rings.values()) for (const res of ring.followers.keys()) send(ring, res, ': hb\n\n');
  }, TRAFFIC_HEARTBEAT_MS).unref();

  /** Ends every follow stream. */
  close(): void {
    clearInterval(this.#heartbeat);
    for (const ring of this.#rings.values()) for (const res of ring.followers.keys()) res.end();
  }

  #ring(lane: string): Ring {
    let ring = this.#rings.get(lane);
    if (ring === undefined) this.#rings.set(lane, (ring = new Ring()));
    return ring;
  }

  addExchange(lane: string, exchange: CapturedExchange): void {
    const ring = this.#ring(lane);
    this.#append(ring, { seq: ring.nextSeq++, kind: 'exchange', exchange });
  }

  addDropped(lane: string, workload: string, count: number): void {
    const ring = this.#ring(lane);
    this.#append(ring, { seq: ring.nextSeq++, kind: 'dropped', at: Date.now(), workload, count, reason: 'sidecar-buffer-full' });
  }

  #append(ring: Ring, entry: TrafficEntry): void {
    const json = JSON.stringify(entry);
    ring.items.push({ entry, json });
    ring.bytes += json.length;
    // Oldest first out, by count and by bytes (one huge entry alone may stay).
    while (ring.items.length > TRAFFIC_RING_ENTRIES || (ring.bytes > TRAFFIC_RING_BYTES && ring.items.length > 1)) ring.bytes -= ring.items.shift()!.json.length;
    const frame = `id: ${entry.seq}\nevent: ${entry.kind}\ndata: ${json}\n\n`;
    for (const [res, filter] of ring.followers) if (matches(entry, filter)) send(ring, res, frame);
  }

  /** Matching entries, oldest first: the newest `limit` of them. */
  list(lane: string, filter: TrafficFilter): { entries: TrafficEntry[]; oldestSeq: number | null; lastSeq: number } {
    const ring = this.#rings.peek(lane);
    if (ring === undefined) return { entries: [], oldestSeq: null, lastSeq: 0 };
    const limit = Math.min(filter.limit ?? TRAFFIC_PAGE_DEFAULT, TRAFFIC_PAGE_MAX);
    const out: TrafficEntry[] = [];
    for (let i = ring.items.length - 1; i >= 0 && out.length < limit; i--) {
      const entry = ring.items[i]!.entry;
      if (matches(entry, filter)) out.push(entry);
    }
    return { entries: out.reverse(), oldestSeq: ring.items[0]?.entry.seq ?? null, lastSeq: ring.nextSeq - 1 };
  }

  /**
   * Follows a sandbox's stream on `res` (SSE headers already sent): entries after `afterSeq` still in
   * the ring first (a `gap` event when some already left it), then new ones as they arrive.
   */
  follow(lane: string, res: ServerResponse, filter: TrafficFilter): void {
    const ring = this.#ring(lane);
    const after = filter.afterSeq ?? ring.nextSeq - 1;
    const oldest = ring.items[0]?.entry.seq;
    if (oldest !== undefined && after < oldest - 1) send(ring, res, `event: gap\ndata: ${JSON.stringify({ missed: oldest - 1 - after })}\n\n`);
    for (const { entry, json } of ring.items) if (entry.seq > after && matches(entry, filter)) send(ring, res, `id: ${entry.seq}\nevent: ${entry.kind}\ndata: ${json}\n\n`);
    ring.followers.set(res, { ...filter, afterSeq: undefined, sinceMs: undefined });
    res.once('close', () => ring.followers.delete(res));
  }
}

function send(ring: Ring, res: ServerResponse, frame: string): void {
  const socket = res.socket as Socket | null;
  if (socket === null || socket.destroyed || socket.writableLength > FOLLOW_MAX_BUFFERED_BYTES) {
    ring.followers.delete(res);
    res.destroy();
    return;
  }
  res.write(frame);
}
