// Ships captured exchanges and probe sightings to the control plane in batches over one keep-alive connection.
// Never in the way of requests: the queue is bounded (count and bytes); when it is full, records are dropped and
// counted — per sandbox, so the control plane puts a "dropped" marker in that sandbox's stream — never requests.
import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import { REPORTS_PATH, type ReportedExchange, type ProbeSighting, type SidecarReport } from '../model/capture.js';

/** Records (exchanges + sightings) waiting to be sent, at most. */
export const REPORT_QUEUE_MAX_ITEMS = 2000;
/** Estimated bytes waiting to be sent, at most (bodies are what make records big). */
export const REPORT_QUEUE_MAX_BYTES = 4 * 1024 * 1024;
/** A batch leaves this long after its first record (or at once when it is full). */
export const REPORT_FLUSH_MS = 200;
/** Records per POST, at most (the control plane accepts REPORT_MAX_ITEMS). */
export const REPORT_BATCH_MAX_ITEMS = 500;
/** A POST that has not been answered within this is abandoned (its records count as dropped). */
export const REPORT_TIMEOUT_MS = 5000;

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
  #exchanges: ReportedExchange[] = [];
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
  exchange(record: ReportedExchange, bytes: number): void {
    if (this.#full(bytes)) {
      this.counters.dropped++;
      this.#dropped.set(record.sandbox, (this.#dropped.get(record.sandbox) ?? 0) + 1);
      return;
    }
    this.#exchanges.push(record);
    this.#queued(bytes);
  }

  sighting(sighting: ProbeSighting): void {
    if (this.#full(200)) {
      this.counters.dropped++;
      return;
    }
    this.#sightings.push(sighting);
    this.#queued(200);
  }

  get queueLength(): number {
    return this.#exchanges.length + this.#sightings.length;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#agent.destroy();
  }

  #full(bytes: number): boolean {
    return this.queueLength >= REPORT_QUEUE_MAX_ITEMS || this.#bytes + bytes > REPORT_QUEUE_MAX_BYTES;
  }

  #queued(bytes: number): void {
    this.#bytes += bytes;
    this.counters.queued++;
    if (this.#timer === null && !this.#sending) {
      this.#timer = setTimeout(() => this.#flush(), this.queueLength >= REPORT_BATCH_MAX_ITEMS ? 0 : REPORT_FLUSH_MS);
      this.#timer.unref();
    }
  }

  #flush(): void {
    this.#timer = null;
    if (this.#stopped || this.#sending || (this.queueLength === 0 && this.#dropped.size === 0)) return;
    const exchanges = this.#exchanges.splice(0, REPORT_BATCH_MAX_ITEMS);
    const sightings = this.#sightings.splice(0, REPORT_BATCH_MAX_ITEMS - exchanges.length);
    // Bytes are an estimate per record: scale down by the share sent.
    const total = exchanges.length + sightings.length + this.queueLength;
    this.#bytes = total === 0 ? 0 : Math.round((this.#bytes * this.queueLength) / total);
    const dropped = Object.fromEntries(this.#dropped);
    this.#dropped = new Map();
    const report: SidecarReport = { workload: this.#workload, exchanges, sightings, dropped };
    const body = JSON.stringify(report);
    this.#sending = true;
    this.#post(body, (error) => {
      this.#sending = false;
      if (error === null) {
        this.counters.sent++;
      } else {
        this.counters.failed++;
        this.counters.lost += exchanges.length + sightings.length;
        for (const e of exchanges) this.#dropped.set(e.sandbox, (this.#dropped.get(e.sandbox) ?? 0) + 1);
        for (const [sandbox, n] of Object.entries(dropped)) this.#dropped.set(sandbox, (this.#dropped.get(sandbox) ?? 0) + n);
        if (error !== this.#lastRefusal) {
          this.#lastRefusal = error;
          this.#log.warn({ err: error }, 'traffic report not accepted by the control plane; records dropped');
        }
      }
      // Drop counts go out too (the stream's marker), retried like records when the control plane is away.
      if (this.queueLength > 0 || this.#dropped.size > 0) {
        this.#timer = setTimeout(() => this.#flush(), error === null ? 0 : REPORT_FLUSH_MS * 5);
        this.#timer.unref();
      }
    });
  }

  #post(body: string, done: (error: string | null) => void): void {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
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
