// What a lane's sidecars tell the control plane: captured exchanges of a sandbox, probe sightings of the propagation
// doctor, and the report that carries both. Shared by the sidecar (producer), the control plane and the clients. No I/O.
import { HEADER_NAME_RE } from '../core/names.js';

/** The most of each body a sandbox may ask its sidecars to keep (`spec.capture.bodyBytes`); hard maximum. */
export const CAPTURE_BODY_MAX_BYTES = 64 * 1024;
/** Extra header names a sandbox may add to the redaction list. */
export const CAPTURE_MAX_REDACTED = 32;
/** Always redacted, in the sidecar, before anything leaves the pod. */
export const DEFAULT_REDACTED_HEADERS: readonly string[] = Object.freeze(['authorization', 'cookie', 'set-cookie', 'proxy-authorization']);
/** What a redacted header's value becomes. */
export const REDACTED = '[redacted]';

/** A sandbox's capture settings as the route table carries them to the sidecars (`route.capture`). */
export interface CaptureRule {
  /** keep the first this many bytes of each body (0: headers only) */
  readonly bodyBytes: number;
  /** header names redacted besides DEFAULT_REDACTED_HEADERS, lower-case */
  readonly redactHeaders: readonly string[];
}

/** A CaptureRule as the sidecar applies it: every redacted name (defaults included) in one set. */
export interface CompiledCapture {
  readonly bodyBytes: number;
  readonly redact: ReadonlySet<string>;
  /** the lengths of the redacted names: most header names are ruled out without lower-casing them */
  readonly redactLengths: ReadonlySet<number>;
}

export function compileCapture(rule: CaptureRule): CompiledCapture {
  const redact = new Set([...DEFAULT_REDACTED_HEADERS, ...rule.redactHeaders]);
  return { bodyBytes: rule.bodyBytes, redact, redactLengths: new Set([...redact].map((n) => n.length)) };
}

/** A body kept by capture: UTF-8 text when it decodes as such, base64 otherwise. */
export interface CapturedBody {
  readonly encoding: 'utf8' | 'base64';
  readonly data: string;
  /** the body was longer than what was kept */
  readonly truncated: boolean;
}

/** One request a sidecar routed to a sandbox's fork, and what came back. */
export interface CapturedExchange {
  /** epoch ms at which the sidecar received the request */
  readonly at: number;
  readonly sandbox: string;
  /** the workload whose sidecar routed it (the fork stands in for it) */
  readonly workload: string;
  readonly protocol: 'http1' | 'h2';
  readonly method: string;
  readonly path: string;
  /** the status the client got; 0 when the connection was cut before any */
  readonly status: number;
  /** the sidecar's error code when it answered itself (fork unreachable, timeout…) */
  readonly error?: string;
  readonly durationMs: number;
  readonly target: string;
  readonly requestHeaders: Readonly<Record<string, string>>;
  readonly responseHeaders: Readonly<Record<string, string>>;
  readonly requestBody?: CapturedBody;
  readonly responseBody?: CapturedBody;
}

/** Probe keys of the propagation doctor start with this (and are valid routing keys that no route ever has). */
export const PROBE_KEY_PREFIX = 'lwprobe';

/** A request a sidecar saw while a probe was active. */
export interface ProbeSighting {
  readonly probe: string;
  readonly workload: string;
  readonly at: number;
  /** the request carried the probe key in its baggage */
  readonly keyed: boolean;
  /** it carried the probe's trace id in `traceparent` (trace context propagated, baggage perhaps not) */
  readonly traced: boolean;
  readonly method: string;
  readonly path: string;
  /** the caller's address as the sidecar saw it, and the sidecar's own: they tell callers apart in a cluster */
  readonly peer: string;
  readonly local: string;
}

/** An active probe as pushed to every sidecar (SSE event `probe`). */
export interface ProbeAnnouncement {
  readonly id: string;
  readonly key: string;
  readonly traceId: string;
  /** epoch ms after which sidecars stop reporting it */
  readonly until: number;
}

/**
 * An exchange as a sidecar reports it: headers as the flat `[name, value, …]` lists it already holds
 * (already redacted), so the sidecar builds no objects per request; the control plane turns them into
 * CapturedExchange's objects when they are read.
 */
export type ReportedExchange = Omit<CapturedExchange, 'requestHeaders' | 'responseHeaders'> & {
  readonly requestHeaders: readonly string[];
  readonly responseHeaders: readonly string[];
};

/** `[name, value, name, value…]` as a lower-cased object, repeated fields joined (cookies with `; `, RFC 6265). */
export function headerRecord(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = String(pairs[i]).toLowerCase();
    const value = String(pairs[i + 1]);
    const previous = out[name];
    out[name] = previous === undefined ? value : name === 'cookie' ? `${previous}; ${value}` : `${previous}, ${value}`;
  }
  return out;
}

/** The API's shape of a reported exchange (header objects built here, on the way out). */
export function capturedExchange(reported: ReportedExchange): CapturedExchange {
  return { ...reported, requestHeaders: headerRecord(reported.requestHeaders), responseHeaders: headerRecord(reported.responseHeaders) };
}

/** What a sidecar's report carries besides its exchanges: its first line. */
export interface ReportHead {
  readonly workload: string;
  readonly sightings: readonly ProbeSighting[];
  /** sandbox → exchanges the sidecar dropped since its last report (its buffer was full) */
  readonly dropped: Readonly<Record<string, number>>;
}

export const REPORTS_PATH = '/v1/reports';
/**
 * A report's wire format: newline-delimited JSON. The first line is the ReportHead; each further line is one
 * ReportedExchange whose first field is `sandbox`. The control plane files each line under its sandbox by that
 * prefix and keeps the line as it came: exchanges are parsed (and checked) when they are read, not at ingest,
 * because most leave the ring unread and the parse is what ingest would cost.
 */
export const REPORT_CONTENT_TYPE = 'application/x-ndjson';
/** Exchanges and sightings one report may carry. */
export const REPORT_MAX_ITEMS = 1000;
/** One exchange line, at most (64 KiB body previews twice, base64, plus headers). */
export const REPORT_MAX_LINE_CHARS = 512 * 1024;
const EXCHANGE_PREFIX = '{"sandbox":"';

/** A report's body: the head, then `exchanges`, each the JSON of a ReportedExchange whose first key is `sandbox`. */
export function reportBody(head: ReportHead, exchanges: readonly string[]): string {
  return exchanges.length === 0 ? JSON.stringify(head) : `${JSON.stringify(head)}\n${exchanges.join('\n')}`;
}

/** The sandbox an exchange line (JSON of a ReportedExchange, `sandbox` first) is for. */
export function exchangeLineSandbox(line: string): string {
  return line.slice(EXCHANGE_PREFIX.length, line.indexOf('"', EXCHANGE_PREFIX.length));
}

/** The exchange lines of one sandbox in a report, not yet parsed. */
export interface ExchangeLines {
  readonly lines: string[];
  /** their length in characters, together */
  chars: number;
}

export class ReportFormatError extends Error {}

/**
 * A report's head (parsed, not yet checked) and its exchange lines by the sandbox each names first; `malformed`
 * counts lines that are not an exchange (too long, or not starting with the sandbox). The lines are slices of
 * `body`. Throws ReportFormatError when the head is not JSON or there are too many lines.
 */
export function splitReport(body: string): { head: unknown; bySandbox: Map<string, ExchangeLines>; malformed: number } {
  let end = body.indexOf('\n');
  if (end === -1) end = body.length;
  let head: unknown;
  try {
    head = JSON.parse(body.slice(0, end));
  } catch (err) {
    throw new ReportFormatError(`line 1 is not JSON: ${(err as Error).message}`);
  }
  const bySandbox = new Map<string, ExchangeLines>();
  let count = 0;
  let malformed = 0;
  for (let start = end + 1; start < body.length; start = end + 1) {
    end = body.indexOf('\n', start);
    if (end === -1) end = body.length;
    if (end === start) continue;
    if (++count > REPORT_MAX_ITEMS) throw new ReportFormatError(`more than ${REPORT_MAX_ITEMS} exchanges`);
    const nameStart = start + EXCHANGE_PREFIX.length;
    const nameEnd = end - start > REPORT_MAX_LINE_CHARS || !body.startsWith(EXCHANGE_PREFIX, start) ? -1 : body.indexOf('"', nameStart);
    if (nameEnd === -1 || nameEnd >= end || nameEnd - nameStart > 63) {
      malformed++;
      continue;
    }
    const sandbox = body.slice(nameStart, nameEnd);
    let group = bySandbox.get(sandbox);
    if (group === undefined) bySandbox.set(sandbox, (group = { lines: [], chars: 0 }));
    group.lines.push(body.slice(start, end));
    group.chars += end - start;
  }
  return { head, bySandbox, malformed };
}

/** Why `input` is not a valid `spec.capture`, as [field path, problem], or the rule. */
export function parseCaptureSpec(input: unknown, path: string): CaptureRule | [string, string] {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return [path, 'must be an object (e.g. {} or {"bodyBytes": 4096})'];
  const { bodyBytes = 0, redactHeaders = [] } = input as { bodyBytes?: unknown; redactHeaders?: unknown };
  for (const field of Object.keys(input)) if (field !== 'bodyBytes' && field !== 'redactHeaders') return [`${path}.${field}`, 'unknown field (bodyBytes, redactHeaders)'];
  if (typeof bodyBytes !== 'number' || !Number.isSafeInteger(bodyBytes) || bodyBytes < 0 || bodyBytes > CAPTURE_BODY_MAX_BYTES) {
    return [`${path}.bodyBytes`, `must be an integer from 0 to ${CAPTURE_BODY_MAX_BYTES}`];
  }
  if (!Array.isArray(redactHeaders) || redactHeaders.length > CAPTURE_MAX_REDACTED) return [`${path}.redactHeaders`, `must be a list of at most ${CAPTURE_MAX_REDACTED} header names`];
  const redact: string[] = [];
  for (const [i, name] of redactHeaders.entries()) {
    if (typeof name !== 'string' || !HEADER_NAME_RE.test(name)) return [`${path}.redactHeaders[${i}]`, 'must be a header name'];
    redact.push(name.toLowerCase());
  }
  return Object.freeze({ bodyBytes, redactHeaders: Object.freeze(redact) });
}

/** One entry of a sandbox's traffic stream: an exchange, or a marker that some were dropped by a sidecar whose buffer was full. */
export type TrafficEntry =
  | { readonly seq: number; readonly kind: 'exchange'; readonly exchange: CapturedExchange }
  | { readonly seq: number; readonly kind: 'dropped'; readonly at: number; readonly workload: string; readonly count: number; readonly reason: DropReason };

/** Why exchanges are missing from a stream: the sidecar's buffer was full, or it sent a record that is not a valid exchange. */
export type DropReason = 'sidecar-buffer-full' | 'invalid-record';

/** GET /v1/sandboxes/:name/traffic */
export interface TrafficPage {
  readonly sandbox: string;
  readonly capture: boolean;
  readonly entries: readonly TrafficEntry[];
  readonly oldestSeq: number | null;
  readonly lastSeq: number;
}

/** Query of GET …/traffic and its follow stream. */
export interface TrafficQuery {
  readonly workload?: string;
  /** `2xx` … `5xx`, or `error` */
  readonly status?: string;
  /** RFC 3339 */
  readonly since?: string;
  readonly after?: number;
  readonly limit?: number;
}

/** POST /v1/probes */
export interface ProbeStarted extends ProbeAnnouncement {
  readonly createdAt: number;
  readonly sandbox: string | null;
  /** the headers the probe request must carry */
  readonly baggage: string;
  readonly traceparent: string;
  /** workloads a sidecar watches right now */
  readonly watching: readonly string[];
}

/** GET /v1/probes/:id */
export interface ProbeResult {
  readonly probe: ProbeAnnouncement & { readonly createdAt: number; readonly sandbox: string | null };
  readonly sightings: readonly ProbeSighting[];
  readonly watching: readonly string[];
  /** the workloads the probe's sandbox forks (empty without one) */
  readonly forks: readonly string[];
}
