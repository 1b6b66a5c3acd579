// Captured traffic per sandbox: a bounded ring (count and bytes, oldest out first) fed by the sidecars' reports, read by
// GET …/traffic and followed over SSE. In memory by design: it is evidence for the lane's next few minutes, not a log.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { LRUCache } from 'lru-cache';
import { createAjv } from '../core/ajv.js';
import { CAPTURE_BODY_MAX_BYTES, capturedExchange, type ReportedExchange, type TrafficEntry } from '../model/capture.js';

export type { TrafficEntry };

/** Entries one sandbox's ring keeps, at most. */
export const TRAFFIC_RING_ENTRIES = 1000;
/** Bytes one sandbox's ring keeps, at most (the exchanges' JSON as reported). */
export const TRAFFIC_RING_BYTES = 8 * 1024 * 1024;
/** Sandboxes with a ring at once; the least recently written one goes first. */
export const TRAFFIC_MAX_RINGS = 256;
/** Entries one GET returns, at most (and by default). */
export const TRAFFIC_PAGE_MAX = 1000;
export const TRAFFIC_PAGE_DEFAULT = 100;
/** A follower with this much unsent data is cut (it resumes with Last-Event-ID). */
const FOLLOW_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

type DroppedEntry = Extract<TrafficEntry, { kind: 'dropped' }>;

const HEADER_PAIRS = { type: 'array', maxItems: 1000, items: { type: 'string', maxLength: 16384 } } as const;
const BODY = {
  type: 'object',
  required: ['encoding', 'data', 'truncated'],
  properties: { encoding: { type: 'string', enum: ['utf8', 'base64'] }, data: { type: 'string', maxLength: 2 * CAPTURE_BODY_MAX_BYTES }, truncated: { type: 'boolean' } },
} as const;

/** A reported exchange, checked when it is first read: every field the API answers with. */
const EXCHANGE_SCHEMA = {
  type: 'object',
  required: ['sandbox', 'workload', 'at', 'status', 'method', 'path', 'protocol', 'durationMs', 'target', 'requestHeaders', 'responseHeaders'],
  properties: {
    sandbox: { type: 'string', maxLength: 63 },
    workload: { type: 'string', maxLength: 127 },
    at: { type: 'integer', minimum: 0 },
    status: { type: 'integer', minimum: 0, maximum: 999 },
    method: { type: 'string', maxLength: 64 },
    path: { type: 'string', maxLength: 16384 },
    protocol: { type: 'string', enum: ['http1', 'h2'] },
    durationMs: { type: 'number', minimum: 0 },
    target: { type: 'string', maxLength: 300 },
    error: { type: 'string', maxLength: 64 },
    requestHeaders: HEADER_PAIRS,
    responseHeaders: HEADER_PAIRS,
    requestBody: BODY,
    responseBody: BODY,
  },
} as const;

const validExchange = createAjv().compile<ReportedExchange>(EXCHANGE_SCHEMA);

/** `json` as an exchange of `sandbox` reported by `workload`'s sidecar, known fields only; null when it is not one. */
function decodeExchange(json: string, sandbox: string, workload: string): ReportedExchange | null {
  let e: unknown;
  try {
    e = JSON.parse(json);
  } catch {
    return null;
  }
  if (!validExchange(e) || e.sandbox !== sandbox || e.workload !== workload) return null;
  const stored: { -readonly [K in keyof ReportedExchange]: ReportedExchange[K] } = {
    at: e.at,
    sandbox: e.sandbox,
    workload: e.workload,
    protocol: e.protocol,
    method: e.method,
    path: e.path,
    status: e.status,
    durationMs: e.durationMs,
    target: e.target,
    requestHeaders: e.requestHeaders,
    responseHeaders: e.responseHeaders,
  };
  if (e.error !== undefined) stored.error = e.error;
  if (e.requestBody !== undefined) stored.requestBody = { encoding: e.requestBody.encoding, data: e.requestBody.data, truncated: e.requestBody.truncated };
  if (e.responseBody !== undefined) stored.responseBody = { encoding: e.responseBody.encoding, data: e.responseBody.data, truncated: e.responseBody.truncated };
  return stored;
}

/**
 * One ring entry. An exchange is kept as the line its sidecar sent: most entries leave the ring unread, so it is
 * parsed, checked and shaped for the API when first read or followed, not at ingest. A line that turns out not to
 * be a valid exchange reads as a `dropped` marker with reason `invalid-record`.
 */
class Stored {
  readonly seq: number;
  readonly bytes: number;
  /** the sandbox and reporting workload the control plane filed it under */
  readonly #sandbox: string;
  readonly #workload: string;
  readonly #receivedAt: number;
  #json: string | null;
  #exchange: ReportedExchange | null = null;
  #dropped: DroppedEntry | null;
  #entry: TrafficEntry | null = null;
  #frame: string | null = null;

  constructor(seq: number, sandbox: string, workload: string, receivedAt: number, json: string | null, dropped: DroppedEntry | null) {
    this.seq = seq;
    this.#sandbox = sandbox;
    this.#workload = workload;
    this.#receivedAt = receivedAt;
    this.#json = json;
    this.#dropped = dropped;
    this.bytes = json === null ? 120 : json.length;
  }

  #decode(): void {
    if (this.#json === null) return;
    this.#exchange = decodeExchange(this.#json, this.#sandbox, this.#workload);
    if (this.#exchange === null) this.#dropped = { seq: this.seq, kind: 'dropped', at: this.#receivedAt, workload: this.#workload, count: 1, reason: 'invalid-record' };
    this.#json = null;
  }

  /** the exchange (null for a marker) */
  get exchange(): ReportedExchange | null {
    this.#decode();
    return this.#exchange;
  }

  get dropped(): DroppedEntry | null {
    this.#decode();
    return this.#dropped;
  }

  get entry(): TrafficEntry {
    this.#decode();
    return (this.#entry ??= this.#dropped ?? { seq: this.seq, kind: 'exchange', exchange: capturedExchange(this.#exchange!) });
  }

  /** The entry as one SSE event. */
  get frame(): string {
    return (this.#frame ??= `id: ${this.seq}\nevent: ${this.entry.kind}\ndata: ${JSON.stringify(this.entry)}\n\n`);
  }
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

/** Compacted once this many evicted slots lead the array (eviction is then O(1) amortised, not a shift per entry). */
const RING_COMPACT_AT = 1024;

class Ring {
  /** entries from `head` on are live, oldest first */
  items: (Stored | undefined)[] = [];
  head = 0;
  bytes = 0;
  nextSeq = 1;
  /** open follow streams and what each asked for */
  readonly followers = new Map<ServerResponse, TrafficFilter>();

  get size(): number {
    return this.items.length - this.head;
  }

  oldest(): Stored | undefined {
    return this.items[this.head];
  }

  push(stored: Stored): void {
    this.items.push(stored);
    this.bytes += stored.bytes;
    // Oldest first out, by count and by bytes (one huge entry alone may stay).
    while (this.size > TRAFFIC_RING_ENTRIES || (this.bytes > TRAFFIC_RING_BYTES && this.size > 1)) {
      this.bytes -= this.items[this.head]!.bytes;
      this.items[this.head++] = undefined;
    }
    if (this.head >= RING_COMPACT_AT) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

function matches(stored: Stored, filter: TrafficFilter): boolean {
  if (filter.afterSeq !== undefined && stored.seq <= filter.afterSeq) return false;
  const d = stored.dropped;
  if (d !== null) return (filter.workload === undefined || d.workload === filter.workload) && (filter.sinceMs === undefined || d.at >= filter.sinceMs);
  const e = stored.exchange!;
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

  /**
   * Files exchange lines a sidecar of `workload` reported for `sandbox`, whose ring is `lane`; `detach`: copy each
   * line rather than keep it as a slice of the report it came in.
   */
  addExchanges(lane: string, sandbox: string, workload: string, lines: readonly string[], detach: boolean): void {
    const ring = this.#ring(lane);
    const now = Date.now();
    for (const line of lines) this.#append(ring, new Stored(ring.nextSeq++, sandbox, workload, now, detach ? Buffer.from(line).toString() : line, null));
  }

  addDropped(lane: string, workload: string, count: number): void {
    const ring = this.#ring(lane);
    const seq = ring.nextSeq++;
    const at = Date.now();
    this.#append(ring, new Stored(seq, '', workload, at, null, { seq, kind: 'dropped', at, workload, count, reason: 'sidecar-buffer-full' }));
  }

  #append(ring: Ring, stored: Stored): void {
    ring.push(stored);
    for (const [res, filter] of ring.followers) if (matches(stored, filter)) send(ring, res, stored.frame);
  }

  /** Matching entries, oldest first: the newest `limit` of them. */
  list(lane: string, filter: TrafficFilter): { entries: TrafficEntry[]; oldestSeq: number | null; lastSeq: number } {
    const ring = this.#rings.peek(lane);
    if (ring === undefined) return { entries: [], oldestSeq: null, lastSeq: 0 };
    const limit = Math.min(filter.limit ?? TRAFFIC_PAGE_DEFAULT, TRAFFIC_PAGE_MAX);
    const out: TrafficEntry[] = [];
    for (let i = ring.items.length - 1; i >= ring.head && out.length < limit; i--) {
      const stored = ring.items[i]!;
      if (matches(stored, filter)) out.push(stored.entry);
    }
    return { entries: out.reverse(), oldestSeq: ring.oldest()?.seq ?? null, lastSeq: ring.nextSeq - 1 };
  }

  /**
   * Follows a sandbox's stream on `res` (SSE headers already sent): entries after `afterSeq` still in
   * the ring first (a `gap` event when some already left it), then new ones as they arrive.
   */
  follow(lane: string, res: ServerResponse, filter: TrafficFilter): void {
    const ring = this.#ring(lane);
    const after = filter.afterSeq ?? ring.nextSeq - 1;
    const oldest = ring.oldest()?.seq;
    if (oldest !== undefined && after < oldest - 1) send(ring, res, `event: gap\ndata: ${JSON.stringify({ missed: oldest - 1 - after })}\n\n`);
    for (let i = ring.head; i < ring.items.length; i++) {
      const stored = ring.items[i]!;
      if (stored.seq > after && matches(stored, filter)) send(ring, res, stored.frame);
    }
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
