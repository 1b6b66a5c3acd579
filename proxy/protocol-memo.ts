// `--port …/auto`: what each upstream speaks, learned once by an HTTP/2 preface probe that carries no request, and remembered.
import http2 from 'node:http2';
import { connect } from 'node:net';
import { LRUCache } from 'lru-cache';
import { AS_CLIENT, H2C, HTTP1 } from './protocols.js';

/**
 * How long a probe waits for the upstream's SETTINGS frame after connecting. An HTTP/2 server sends it
 * as soon as it has read the preface (RFC 9113 §3.4); an HTTP/1.1 server answers the preface with 400 or
 * closes, which ends the probe sooner. A server that does neither within this time is taken for HTTP/1.1.
 */
export const AUTO_PROBE_TIMEOUT_MS = 1000;

/** What an `auto` upstream speaks: AS_CLIENT until learned (requests then go in the client's protocol), HTTP1 or H2C. */
export type Learned = typeof AS_CLIENT | typeof HTTP1 | typeof H2C;

/**
 * An HTTP/1.1 parser's error: what an HTTP/1.1 client reads when an HTTP/2 server answers. Node's client
 * sets an `HPE_*` code; undici's `HTTPParserError` has none for "Expected HTTP/" (measured, undici 7.30).
 */
export function isHttp1ParseError(err: { readonly code?: unknown; readonly name?: unknown } | null | undefined): boolean {
  if (err == null) return false;
  return err.name === 'HTTPParserError' || (typeof err.code === 'string' && err.code.startsWith('HPE_'));
}

/**
 * One upstream's learned protocol. Learning never sends a request: the probe opens a connection, sends
 * only the HTTP/2 connection preface and an empty SETTINGS frame, and reads the reply. A request waits
 * for the probe and is then sent once, in the learned protocol, so a non-idempotent request can never
 * be sent twice. An upstream that cannot be reached stays unlearned (the request goes in the client's
 * protocol and fails as any unreachable upstream does; the next request probes again).
 */
export class ProtocolMemo {
  learned: Learned = AS_CLIENT;
  /** probes run for this upstream */
  probes = 0;
  #probe: Promise<void> | null = null;
  readonly #host: string;
  readonly #port: number;
  readonly #timeoutMs: number;
  readonly #onLearned: OnLearned | null;

  constructor(host: string, port: number, connectTimeoutMs: number, onLearned: OnLearned | null = null) {
    this.#host = host.replace(/^\[|\]$/g, '');
    this.#port = port;
    this.#timeoutMs = connectTimeoutMs;
    this.#onLearned = onLearned;
  }

  /**
   * What was learned no longer holds (a request in it met an answer of the other protocol, or the connection
   * was refused): the next request probes again. The request that failed is not resent; it was answered 502.
   */
  forget(): void {
    if (this.#probe === null) this.learned = AS_CLIENT;
  }

  /** Resolves once this upstream's protocol is learned, or the probe found it unreachable (`learned` stays AS_CLIENT). Never rejects. */
  probe(): Promise<void> {
    if (this.learned !== AS_CLIENT) return Promise.resolve();
    this.#probe ??= new Promise<void>((resolve) => {
      this.probes++;
      let connected = false;
      let settled = false;
      const session = http2.connect(`http://${this.#host.includes(':') ? `[${this.#host}]` : this.#host}:${this.#port}`, {
        createConnection: () => connect({ host: this.#host, port: this.#port, noDelay: true }),
      });
      const done = (learned: Learned): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.learned = learned;
        this.#probe = null;
        session.destroy();
        if (learned !== AS_CLIENT && this.#onLearned !== null) this.#onLearned(`${this.#host}:${this.#port}`, learned);
        resolve();
      };
      // Before the connection: the connect timeout; after it, the wait for SETTINGS.
      let timer = setTimeout(() => done(AS_CLIENT), this.#timeoutMs);
      session.once('connect', () => {
        connected = true;
        clearTimeout(timer);
        timer = setTimeout(() => done(HTTP1), AUTO_PROBE_TIMEOUT_MS);
      });
      session.once('remoteSettings', () => done(H2C));
      session.on('error', () => done(connected ? HTTP1 : AS_CLIENT));
      session.once('close', () => done(connected ? HTTP1 : AS_CLIENT));
    });
    return this.#probe;
  }
}

/** Told once per upstream what it was found to speak (the sidecar logs it). */
export type OnLearned = (upstream: string, learned: typeof HTTP1 | typeof H2C) => void;

/** The memos of every `auto` upstream (the baseline's ports and their forks), bounded like the connection pools. */
export class ProtocolMemos {
  readonly #memos: LRUCache<string, ProtocolMemo>;
  readonly #connectTimeoutMs: number;
  readonly #onLearned: OnLearned | null;

  constructor(max: number, connectTimeoutMs: number, onLearned: OnLearned | null = null) {
    this.#memos = new LRUCache({ max });
    this.#connectTimeoutMs = connectTimeoutMs;
    this.#onLearned = onLearned;
  }

  get(host: string, port: number): ProtocolMemo {
    // `[::1]` and `::1` are one upstream: the HTTP/1.1 side brackets IPv6 hosts, the HTTP/2 side may not.
    const bare = host.charCodeAt(0) === 0x5b ? host.slice(1, -1) : host;
    const key = `${bare}:${port}`;
    let memo = this.#memos.get(key);
    if (memo === undefined) {
      memo = new ProtocolMemo(bare, port, this.#connectTimeoutMs, this.#onLearned);
      this.#memos.set(key, memo);
    }
    return memo;
  }
}
