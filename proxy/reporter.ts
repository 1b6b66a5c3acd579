// Ships captured exchanges and probe sightings to the control plane in batches over one keep-alive connection.
// Never in the way of requests: the queue is bounded (count and bytes); when it is full, records are dropped and
// counted — per sandbox, so the control plane puts a "dropped" marker in that sandbox's stream — never requests.
import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import { exchangeLineSandbox, REPORT_CONTENT_TYPE, reportBody, REPORTS_PATH, type ReportedExchange, type ProbeSighting } from '../model/capture.js';

/** Records (exchanges + sightings) waiting to be sent, at most. */
export const REPORT_QUEUE_MAX_ITEMS = 2000;
/** Bytes (as JSON) waiting to be sent, at most (bodies are what make records big). */
export const REPORT_QUEUE_MAX_BYTES = 4 * 1024 * 1024;
/** A batch leaves this long after its first record (or at once when it is full). */
export const REPORT_FLUSH_MS = 200;
/** Records per POST, at most (the control plane accepts REPORT_MAX_ITEMS). */
export const REPORT_BATCH_MAX_ITEMS = 500;
/** A POST that has not been answered within this is abandoned (its records count as dropped). */
export const REPORT_TIMEOUT_MS = 5000;

/** What a queued sighting counts for against REPORT_QUEUE_MAX_BYTES (about its JSON). */
const SIGHTING_BYTES = 200;

export interface ReporterCounters {
  /** records queued */
  queued: number;
  /** records dropped because the queue was full (never queued) */
  dropped: number;
  /** queued records lost with a batch that failed */
  lost: number;
  /** batches the control plane accepted */
  sent: number;
  /** batches that failed (network, timeout, refused) */
  failed: number;
}

export class Reporter {
  readonly counters: ReporterCounters = { queued: 0, dropped: 0, lost: 0, sent: 0, failed: 0 };
  readonly #url: URL;
  readonly #workload: string;
  readonly #token: string | undefined;
  readonly #log: Logger;
  /** one connection: batches go one at a time, in order */
  readonly #agent: Agent;
  /** exchanges as the JSON lines they are sent as: one string each, not an object graph, while they wait */
  #exchanges: string[] = [];
  #sightings: ProbeSighting[] = [];
  #bytes = 0;
  /** sandbox → exchanges dropped since the last batch that was sent */
  #dropped = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #sending = false;
  #lastRefusal = '';
  #stopped = false;

  constructor(controlPlane: string, workload: string, token: string | undefined, log: Logger) {
    this.#url = new URL(REPORTS_PATH, controlPlane);
    this.#agent = new (this.#url.protocol === 'https:' ? HttpsAgent : Agent)({ keepAlive: true, maxSockets: 1 });
    this.#workload = workload;
    this.#token = token;
    this.#log = log;
  }

  /** Queues an exchange, or drops it (counted for its sandbox) when the queue is full. */
  exchange(record: ReportedExchange): void {
    if (this.queueLength >= REPORT_QUEUE_MAX_ITEMS) return this.#drop(record.sandbox);
    const line = JSON.stringify(record);
    if (this.#bytes + line.length > REPORT_QUEUE_MAX_BYTES) return this.#drop(record.sandbox);
    this.#exchanges.push(line);
    this.#queued(line.length);
  }

  #drop(sandbox: string): void {
    this.counters.dropped++;
    this.#dropped.set(sandbox, (this.#dropped.get(sandbox) ?? 0) + 1);
  }

  sighting(sighting: ProbeSighting): void {
    if (this.queueLength >= REPORT_QUEUE_MAX_ITEMS || this.#bytes + SIGHTING_BYTES > REPORT_QUEUE_MAX_BYTES) {
      this.counters.dropped++;
      return;
    }
    this.#sightings.push(sighting);
    this.#queued(SIGHTING_BYTES);
  }

  get queueLength(): number {
    return this.#exchanges.length + this.#sightings.length;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#agent.destroy();
  }

  #queued(bytes: number): void {
    this.#bytes += bytes;
    this.counters.queued++;
    if (this.#sending) return; // the batch in flight schedules the next one when it is answered
    if (this.queueLength === REPORT_BATCH_MAX_ITEMS) this.#arm(0);
    else if (this.#timer === null) this.#arm(REPORT_FLUSH_MS);
  }

  #arm(delayMs: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#flush(), delayMs);
    this.#timer.unref();
  }

  #flush(): void {
    this.#timer = null;
    if (this.#stopped || this.#sending || (this.queueLength === 0 && this.#dropped.size === 0)) return;
    const exchanges = this.#exchanges.splice(0, REPORT_BATCH_MAX_ITEMS);
    const sightings = this.#sightings.splice(0, REPORT_BATCH_MAX_ITEMS - exchanges.length);
    for (const line of exchanges) this.#bytes -= line.length;
    this.#bytes = Math.max(0, this.#bytes - SIGHTING_BYTES * sightings.length);
    const dropped = Object.fromEntries(this.#dropped);
    this.#dropped = new Map();
    const body = reportBody({ workload: this.#workload, sightings, dropped }, exchanges);
    this.#sending = true;
    const sentAt = Date.now();
    this.#post(body, (error) => {
      this.#sending = false;
      if (error === null) {
        this.counters.sent++;
      } else {
        this.counters.failed++;
        this.counters.lost += exchanges.length + sightings.length;
        for (const line of exchanges) {
          const sandbox = exchangeLineSandbox(line);
          this.#dropped.set(sandbox, (this.#dropped.get(sandbox) ?? 0) + 1);
        }
        for (const [sandbox, n] of Object.entries(dropped)) this.#dropped.set(sandbox, (this.#dropped.get(sandbox) ?? 0) + n);
        if (error !== this.#lastRefusal) {
          this.#lastRefusal = error;
          this.#log.warn({ err: error }, 'traffic report not accepted by the control plane; records dropped');
        }
      }
      // Drop counts go out too (the stream's marker), retried like records when the control plane is away.
      // What queued meanwhile waits for a full batch or its flush interval: sending it at once would turn a
      // steady stream into one small POST per round trip, which costs both sides far more per record.
      const pending = this.queueLength > 0 || this.#dropped.size > 0;
      if (error !== null) {
        if (pending) this.#arm(REPORT_FLUSH_MS * 5);
      } else if (this.queueLength >= REPORT_BATCH_MAX_ITEMS) {
        this.#arm(0);
      } else if (pending) {
        this.#arm(Math.max(0, REPORT_FLUSH_MS - (Date.now() - sentAt)));
      }
    });
  }

  #post(body: string, done: (error: string | null) => void): void {
    const headers: Record<string, string> = { 'content-type': REPORT_CONTENT_TYPE, 'content-length': String(Buffer.byteLength(body)) };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    const send = this.#url.protocol === 'https:' ? httpsRequest : httpRequest;
    let settled = false;
    const settle = (error: string | null): void => {
      if (settled) return;
      settled = true;
      done(error);
    };
    const req = send(this.#url, { method: 'POST', headers, agent: this.#agent, timeout: REPORT_TIMEOUT_MS }, (res) => {
      res.resume();
      res.once('end', () => settle(res.statusCode === 202 ? null : `HTTP ${res.statusCode}${res.statusCode === 403 ? ' (the sidecar token may not report: give it a sidecar: token)' : ''}`));
      res.once('error', (err) => settle(err.message));
    });
    req.once('timeout', () => req.destroy(new Error(`no answer within ${REPORT_TIMEOUT_MS} ms`)));
    req.once('error', (err: NodeJS.ErrnoException) => settle(err.code ?? err.message));
    req.end(body);
  }
}
