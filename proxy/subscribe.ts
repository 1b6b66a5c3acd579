// Route discovery from the control plane: watch stream, jittered backoff, resume by revision, keep the last good table.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { Logger } from 'pino';
import { RouteTable, type DeleteEvent, type UpsertEvent } from '../model/route-table.js';
import type { RouteState } from './route-state.js';
import type { ProbeAnnouncement } from '../model/capture.js';
import { REPLICA_HEADER } from '../model/console.js';
import type { Acknowledger } from './ack.js';

export interface SubscriptionOptions {
  /** control-plane replicas (or one Service address): the watch moves to the next one when a stream fails */
  readonly urls: readonly string[];
  readonly token: string | undefined;
  readonly workload: string;
  /** where the last table is kept so a restarted sidecar can route before the control plane answers */
  readonly cacheFile: string | undefined;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** no bytes for this long (the control plane sends heartbeats every ≤ 15 s) → reconnect */
  readonly silenceTimeoutMs?: number;
  /** the propagation doctor announced a probe */
  readonly onProbe?: (probe: ProbeAnnouncement) => void;
  /** sent as REPLICA_HEADER on the watch stream; the acknowledger names itself the same way */
  readonly replica?: string;
  /** told the revision of the table after every applied event (and every new stream) */
  readonly acks?: Acknowledger;
}

class BadEventError extends Error {}

/** The control plane answered the watch with an error status (401, 403, 404, 503…): its code, if the body had one. */
class WatchRefusedError extends Error {
  readonly status: number;
  constructor(status: number, body: string) {
    let code = '';
    try {
      code = (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? '';
    } catch {
      // not our JSON (a proxy's HTML page): the status says enough
    }
    const hint = status === 401 ? ' (give the sidecar --token / LANEWAY_TOKEN with a reader token)' : status === 403 ? ' (the token may not watch routes)' : '';
    super(`control plane refused the watch: ${status}${code === '' ? '' : ` ${code}`}${hint}`);
    this.status = status;
  }
}

export class ControlPlaneSubscription {
  readonly #options: SubscriptionOptions;
  readonly #state: RouteState;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  #stopped = false;
  #attempt = 0;
  /** true when our table came from this control plane's stream (or its cache), so deltas apply to it */
  #resumable = false;
  #cacheTimer: NodeJS.Timeout | null = null;
  #sleepTimer: NodeJS.Timeout | null = null;
  #wake: (() => void) | null = null;
  /** The last failure logged at warn: a sidecar retrying the same refusal every few seconds logs it once, not forever. */
  #lastWarned: string | null = null;
  /** index into `urls` of the replica watched now; starts at random so a fleet spreads over the replicas */
  #current: number;

  constructor(options: SubscriptionOptions, state: RouteState, log: Logger) {
    if (options.urls.length === 0) throw new Error('no control-plane URL');
    this.#options = options;
    this.#current = Math.floor(Math.random() * options.urls.length);
    this.#state = state;
    this.#log = log.child({ source: 'control-plane' });
  }

  get #url(): string {
    return this.#options.urls[this.#current]!;
  }

  get #source(): string {
    return `control-plane:${this.#url}`;
  }

  /** Loads the cache if any, then subscribes in the background (never throws: the sidecar must start). */
  async start(): Promise<void> {
    if (this.#options.cacheFile !== undefined) await this.#loadCache(this.#options.cacheFile);
    this.#state.connected = false;
    this.#state.disconnectedAt = Date.now();
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
    this.#options.acks?.stop();
    if (this.#sleepTimer !== null) clearTimeout(this.#sleepTimer);
    this.#wake?.();
    if (this.#cacheTimer !== null) clearTimeout(this.#cacheTimer);
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.#watchOnce();
      } catch (err) {
        if (this.#stopped) break;
        if (err instanceof BadEventError) this.#resumable = false; // resync from a fresh snapshot
        const message = (err as Error).message;
        // Shown on /routes until a table arrives, so "not loaded" always comes with its reason.
        this.#state.lastError = message;
        if (message !== this.#lastWarned) {
          this.#lastWarned = message;
          this.#log.warn({ err: message, attempt: this.#attempt }, err instanceof WatchRefusedError ? message : 'watch stream lost; keeping the last table');
        } else {
          this.#log.debug({ err: message, attempt: this.#attempt }, 'watch retry failed again');
        }
      }
      if (this.#state.connected) {
        this.#state.connected = false;
        this.#state.disconnectedAt = Date.now();
      }
      if (this.#stopped) break;
      // The next replica, after the same jittered backoff; it resumes from our revision (revisions are
      // the store's, the same on every replica).
      this.#current = (this.#current + 1) % this.#options.urls.length;
      await this.#sleep(this.#backoff());
    }
  }

  /** Full-jitter exponential backoff (AWS architecture blog): spreads a fleet's reconnects after an outage. */
  #backoff(): number {
    const base = this.#options.backoffBaseMs ?? 200;
    const max = this.#options.backoffMaxMs ?? 10_000;
    const ceiling = Math.min(max, base * 2 ** Math.min(this.#attempt, 20));
    this.#attempt++;
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(resolve, ms);
    });
  }

  async #watchOnce(): Promise<void> {
    const [namespace, name] = this.#options.workload.split('/') as [string, string];
    const url = new URL(`/v1/workloads/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/routes/watch`, this.#url);
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.#options.token !== undefined) headers.authorization = `Bearer ${this.#options.token}`;
    if (this.#resumable && this.#state.loaded) headers['last-event-id'] = String(this.#state.table.revision);
    if (this.#options.replica !== undefined) headers[REPLICA_HEADER] = this.#options.replica;
    // node:http, not undici: one long-lived stream does not need a pool, and undici's full package
    // would add ~18 MB to every sidecar's RSS (see upstreams.ts).
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, { headers, signal: this.#abort.signal, timeout: 10_000 }, resolve);
      req.once('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.once('error', reject);
      req.end();
    });
    if (res.statusCode !== 200) {
      let text = '';
      res.setEncoding('utf8');
      for await (const chunk of res) {
        text += chunk as string;
        if (text.length > 300) break;
      }
      res.destroy();
      throw new WatchRefusedError(res.statusCode ?? 0, text.slice(0, 300));
    }
    // Heartbeats arrive at least every 15 s: a stream silent for longer is dead, whatever TCP thinks.
    const silenceMs = this.#options.silenceTimeoutMs ?? 45_000;
    res.socket.setTimeout(silenceMs, () => res.destroy(new Error(`no event or heartbeat for ${silenceMs} ms`)));
    this.#state.connected = true;
    this.#state.lastError = undefined;
    this.#options.acks?.reconnected();
    // A resume with nothing new sends no event: what we already have is what we acknowledge.
    if (this.#resumable && this.#state.loaded) this.#options.acks?.applied(this.#state.table.revision);
    this.#lastWarned = null; // the next failure is news again
    this.#log.info({ url: url.href, resume: headers['last-event-id'] ?? null }, 'watching routes');
    let failure: Error | null = null;
    const parser = createParser({
      onEvent: (event) => {
        if (failure !== null) return;
        try {
          this.#apply(event);
        } catch (err) {
          failure = err as Error;
        }
      },
    });
    res.setEncoding('utf8');
    for await (const chunk of res) {
      parser.feed(chunk as string);
      if (failure !== null) {
        res.destroy();
        throw failure;
      }
    }
    throw new Error('watch stream ended');
  }

  #apply(event: EventSourceMessage): void {
    const state = this.#state;
    const source = this.#source;
    let data: unknown;
    try {
      data = JSON.parse(event.data);
    } catch {
      state.reject(source, `event ${event.event ?? 'message'}: data is not JSON`);
      throw new BadEventError('bad event');
    }
    try {
      switch (event.event) {
        case 'snapshot': {
          if (!state.replace(RouteTable.parse(data), source)) throw new BadEventError('snapshot for another workload');
          break;
        }
        case 'upsert':
        case 'delete': {
          const delta = data as Partial<UpsertEvent & DeleteEvent>;
          if (typeof delta.revision !== 'number' || !Number.isSafeInteger(delta.revision)) throw new Error('revision must be an integer');
          if (!this.#resumable) throw new Error(`${event.event} before any snapshot`);
          if (delta.revision <= state.table.revision) return; // already applied (duplicate after resume)
          if (event.event === 'upsert') state.table.applyUpsert(delta as UpsertEvent);
          else this.#deleted(delta);
          state.changed(source);
          break;
        }
        case 'probe': {
          // Not a route change: the propagation doctor's probe, for a few seconds (proxy/probes.ts).
          const probe = data as Partial<ProbeAnnouncement>;
          if (typeof probe.id === 'string' && typeof probe.key === 'string' && typeof probe.traceId === 'string' && typeof probe.until === 'number') {
            this.#options.onProbe?.(probe as ProbeAnnouncement);
          }
          return;
        }
        default:
          return; // unknown event types are ignored, for forward compatibility
      }
    } catch (err) {
      if (err instanceof BadEventError) throw err;
      state.reject(source, `event ${event.event}: ${(err as Error).message}`);
      throw new BadEventError((err as Error).message);
    }
    this.#resumable = true;
    this.#attempt = 0;
    this.#scheduleCacheWrite();
    this.#options.acks?.applied(state.table.revision);
  }

  #deleted(delta: Partial<DeleteEvent>): void {
    if (typeof delta.key !== 'string') throw new Error('key must be a string');
    this.#state.table.applyDelete(delta as DeleteEvent);
  }

  async #loadCache(file: string): Promise<void> {
    try {
      const table = RouteTable.parse(JSON.parse(await readFile(file, 'utf8')));
      if (this.#state.replace(table, `cache:${file}`)) this.#resumable = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#log.warn({ file, err: (err as Error).message }, 'routes cache unusable');
    }
  }

  #scheduleCacheWrite(): void {
    const file = this.#options.cacheFile;
    if (file === undefined || this.#cacheTimer !== null) return;
    // Coalesce bursts of deltas into one write; write-then-rename so a crash never leaves half a file.
    this.#cacheTimer = setTimeout(() => {
      this.#cacheTimer = null;
      const tmp = `${file}.${process.pid}.tmp`;
      mkdir(dirname(file), { recursive: true })
        .then(() => writeFile(tmp, JSON.stringify(this.#state.table.toSnapshot())))
        .then(() => rename(tmp, file))
        .catch((err: Error) => this.#log.warn({ file, err: err.message }, 'cannot write routes cache'));
    }, 100);
    this.#cacheTimer.unref();
  }
}
