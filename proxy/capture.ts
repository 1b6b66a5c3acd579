// Traffic capture for sandboxes that ask for it (`spec.capture`): one exchange's record, built from what the forwarder
// already has. Redaction happens here, in the sidecar, before a record is queued; nothing on the request path waits on it.
import { REDACTED, type CapturedBody, type CapturedExchange, type CompiledCapture } from '../model/capture.js';

/** The first `limit` bytes of a body, as they pass. */
export class BodyTap {
  readonly #limit: number;
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  #seen = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(chunk: Buffer): void {
    this.#seen += chunk.length;
    const room = this.#limit - this.#kept;
    if (room <= 0) return;
    // A copy: undici may reuse the buffer it handed us.
    const kept = Buffer.from(chunk.subarray(0, room));
    this.#chunks.push(kept);
    this.#kept += kept.length;
  }

  get size(): number {
    return this.#kept;
  }

  body(): CapturedBody | undefined {
    if (this.#seen === 0) return undefined;
    const bytes = Buffer.concat(this.#chunks);
    const text = bytes.toString('utf8');
    // Round-trips only when valid UTF-8 (a cut multi-byte character at the end counts as binary).
    const utf8 = Buffer.byteLength(text) === bytes.length && !text.includes('\uFFFD');
    return { encoding: utf8 ? 'utf8' : 'base64', data: utf8 ? text : bytes.toString('base64'), truncated: this.#seen > this.#kept };
  }
}

/** `[name, value, name, value…]` as a lower-cased object, repeated fields joined, redacted names replaced. */
export function headerRecord(pairs: readonly string[], redact: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = pairs[i]!.toLowerCase();
    const value = redact.has(name) ? REDACTED : pairs[i + 1]!;
    const previous = out[name];
    out[name] = previous === undefined ? value : name === 'cookie' ? `${previous}; ${value}` : `${previous}, ${value}`;
  }
  return out;
}

/** What the forwarder knows about an exchange when it routes it. */
export type CaptureFields = Pick<CapturedExchange, 'sandbox' | 'workload' | 'protocol' | 'method' | 'path' | 'target'>;

/** One exchange being captured; `finish` turns it into the record the reporter ships. */
export class Capture {
  readonly at = Date.now();
  readonly #started = performance.now();
  readonly #rule: CompiledCapture;
  readonly #fields: CaptureFields;
  readonly #requestHeaders: readonly string[];
  responseHeaders: readonly string[] = [];
  readonly requestBody: BodyTap | null;
  readonly responseBody: BodyTap | null;

  constructor(rule: CompiledCapture, fields: CaptureFields, requestHeaders: readonly string[]) {
    this.#rule = rule;
    this.#fields = fields;
    this.#requestHeaders = requestHeaders;
    this.requestBody = rule.bodyBytes > 0 ? new BodyTap(rule.bodyBytes) : null;
    this.responseBody = rule.bodyBytes > 0 ? new BodyTap(rule.bodyBytes) : null;
  }

  /** The record, and a size estimate for the reporter's byte cap. */
  finish(status: number, error: string | undefined): { record: CapturedExchange; bytes: number } {
    const redact = this.#rule.redact;
    const requestBody = this.requestBody?.body();
    const responseBody = this.responseBody?.body();
    const record: CapturedExchange = {
      ...this.#fields,
      at: this.at,
      status,
      ...(error === undefined ? {} : { error }),
      durationMs: Math.round((performance.now() - this.#started) * 1000) / 1000,
      requestHeaders: headerRecord(this.#requestHeaders, redact),
      responseHeaders: headerRecord(this.responseHeaders, redact),
      ...(requestBody === undefined ? {} : { requestBody }),
      ...(responseBody === undefined ? {} : { responseBody }),
    };
    let bytes = 256 + this.#fields.path.length + (this.requestBody?.size ?? 0) * 1.4 + (this.responseBody?.size ?? 0) * 1.4;
    for (const s of this.#requestHeaders) bytes += s.length + 4;
    for (const s of this.responseHeaders) bytes += s.length + 4;
    return { record, bytes: Math.ceil(bytes) };
  }
}
