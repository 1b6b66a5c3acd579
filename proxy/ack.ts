// Tells the control plane which route revision this sidecar applied (POST …/acks), so the console shows a sidecar that is behind.
import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { hostname } from 'node:os';
import type { Logger } from 'pino';

/** An acknowledgement not answered within this is abandoned; the next change (or reconnect) sends a newer one. */
export const ACK_TIMEOUT_MS = 5000;

/** This sidecar's name on its watch stream and in its acknowledgements: the pod name (HOSTNAME) and the process id. */
export function replicaId(): string {
  return `${hostname()}/${process.pid}`;
}

/**
 * At most one request in flight; revisions applied meanwhile collapse into one acknowledgement of
 * the newest, so a burst of 1,000 deltas costs a couple of requests, not 1,000. A failure is logged
 * once (a reader token may not acknowledge: routing is unaffected) and not retried until the next change.
 */
export class Acknowledger {
  readonly #url: URL;
  readonly #token: string | undefined;
  readonly #replica: string;
  readonly #log: Logger;
  readonly #agent: Agent;
  #pending: number | null = null;
  #sent = -1;
  #sending = false;
  #warned = false;
  #stopped = false;

  constructor(controlPlane: string, workload: string, token: string | undefined, replica: string, log: Logger) {
    const [namespace, name] = workload.split('/') as [string, string];
    this.#url = new URL(`/v1/workloads/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/acks`, controlPlane);
    this.#agent = new (this.#url.protocol === 'https:' ? HttpsAgent : Agent)({ keepAlive: true, maxSockets: 1 });
    this.#token = token;
    this.#replica = replica;
    this.#log = log;
  }

  /** The route table is now at `revision` (after a snapshot or a delta). */
  applied(revision: number): void {
    if (this.#stopped) return;
    this.#pending = revision;
    if (!this.#sending) void this.#flush();
  }

  /** A new watch stream: the control plane forgot this replica's acknowledgement, so the next one goes out even if unchanged. */
  reconnected(): void {
    this.#sent = -1;
  }

  stop(): void {
    this.#stopped = true;
    this.#agent.destroy();
  }

  async #flush(): Promise<void> {
    this.#sending = true;
    while (this.#pending !== null && !this.#stopped) {
      const revision = this.#pending;
      this.#pending = null;
      if (revision === this.#sent) continue;
      try {
        await this.#post(revision);
        this.#sent = revision;
        this.#warned = false;
      } catch (err) {
        if (!this.#warned) this.#log.warn({ err: (err as Error).message }, 'cannot acknowledge route revision (routing is not affected)');
        this.#warned = true;
      }
    }
    this.#sending = false;
  }

  #post(revision: number): Promise<void> {
    const body = JSON.stringify({ replica: this.#replica, revision });
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    const send = this.#url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(this.#url, { method: 'POST', headers, agent: this.#agent, timeout: ACK_TIMEOUT_MS }, (res) => {
        res.resume();
        res.once('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`control plane answered ${res.statusCode}`))));
        res.once('error', reject);
      });
      req.once('timeout', () => req.destroy(new Error(`no answer within ${ACK_TIMEOUT_MS} ms`)));
      req.once('error', reject);
      req.end(body);
    });
  }
}
