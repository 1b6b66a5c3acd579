// Traffic capture for sandboxes that ask for it (`spec.capture`): one exchange's record, built from what the forwarder
// already has. Redaction happens here, in the sidecar, before a record is queued; nothing on the request path waits on it.
import { REDACTED, type CapturedBody, type CapturedExchange, type CompiledCapture, type ReportedExchange } from '../model/capture.js';

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

  body(): CapturedBody | undefined {
    if (this.#seen === 0) return undefined;
    const bytes = Buffer.concat(this.#chunks);
    const text = bytes.toString('utf8');
    // Round-trips only when valid UTF-8 (a cut multi-byte character at the end counts as binary).
    const utf8 = Buffer.byteLength(text) === bytes.length && !text.includes('\uFFFD');
    return { encoding: utf8 ? 'utf8' : 'base64', data: utf8 ? text : bytes.toString('base64'), truncated: this.#seen > this.#kept };
  }
}

/** `pairs` with the values of redacted names replaced; the same array when nothing is redacted (the usual case). */
export function redactPairs(pairs: readonly string[], rule: CompiledCapture): readonly string[] {
  let out: string[] | null = null;
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = pairs[i]!;
    if (!rule.redactLengths.has(name.length) || !rule.redact.has(name.toLowerCase())) continue;
    out ??= pairs.slice();
    out[i + 1] = REDACTED;
  }
  return out ?? pairs;
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

  /** `bodies` false: headers only, whatever the rule asks (HTTP/2 keeps no body previews). */
  constructor(rule: CompiledCapture, fields: CaptureFields, requestHeaders: readonly string[], bodies = true) {
    this.#rule = rule;
    this.#fields = fields;
    this.#requestHeaders = requestHeaders;
    const bodyBytes = bodies ? rule.bodyBytes : 0;
    this.requestBody = bodyBytes > 0 ? new BodyTap(bodyBytes) : null;
    this.responseBody = bodyBytes > 0 ? new BodyTap(bodyBytes) : null;
  }

  /** The record the reporter ships. */
  finish(status: number, error: string | undefined): ReportedExchange {
    const f = this.#fields;
    // One object literal of a fixed shape (no spreads): this runs once per captured request.
    // `sandbox` first: the control plane files each record by its line's prefix (see splitReport).
    const record: { -readonly [K in keyof ReportedExchange]: ReportedExchange[K] } = {
      sandbox: f.sandbox,
      at: this.at,
      workload: f.workload,
      protocol: f.protocol,
      method: f.method,
      path: f.path,
      status,
      durationMs: Math.round((performance.now() - this.#started) * 1000) / 1000,
      target: f.target,
      requestHeaders: redactPairs(this.#requestHeaders, this.#rule),
      responseHeaders: redactPairs(this.responseHeaders, this.#rule),
    };
    if (error !== undefined) record.error = error;
    const requestBody = this.requestBody?.body();
    if (requestBody !== undefined) record.requestBody = requestBody;
    const responseBody = this.responseBody?.body();
    if (responseBody !== undefined) record.responseBody = responseBody;
    return record;
  }
}
