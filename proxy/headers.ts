// One pass over a request's raw headers: collects the routing-key sources and builds the header list to forward.
import { findBaggageValue, findLastSingleValue, findTracestateValue } from './baggage.js';
import { FORK_HEADER } from '../core/constants.js';
import type { SidecarErrorCode } from './errors.js';

/** What a header means to the sidecar; anything not in the map is forwarded untouched. */
const KEEP = 0;
const DROP = 1; // hop-by-hop (RFC 9110 §7.6.1) or consumed here
const BAGGAGE = 2;
const TRACESTATE = 3;
const OT_BAGGAGE = 4;
const UBERCTX = 5;
const CONNECTION = 6;
const HOPS = 7;
const CONTENT_LENGTH = 8;
const TRANSFER_ENCODING = 9;
const UPGRADE = 10;
const FORWARDED = 11;
const HOST = 12;

/**
 * Request header lines a sidecar forwards at most (README "Forwarding"). Node's HTTP server would
 * silently drop lines past its own `maxHeadersCount` (baggage included), so the listeners turn that
 * off and this limit answers 431 instead (RFC 6585 §5). 5× Apache's and Envoy's default of 100, and
 * below what a Node app behind us would itself truncate; the 16 KiB header-size limit still applies.
 */
export const MAX_REQUEST_HEADERS = 500;
/**
 * HTTP/2 request headers larger than this get 431, as an HTTP/1 head over Node's 16 KiB does. Sized as
 * HPACK counts a header list (RFC 9113 §6.5.2: name + value + 32 per field).
 */
export const MAX_REQUEST_HEADER_BYTES = 16 * 1024;

/** Our loop-guard header: how many sidecars forwarded this request to a sandbox target. */
export const HOPS_HEADER = 'laneway-hops';

/** Names a sidecar cares about, for one routing-key name; built once at startup. */
export class HeaderRules {
  readonly keyName: string;
  readonly #kinds = new Map<string, number>();
  /**
   * (length, lowercased first letter) pairs of interesting names. Common headers share a length with
   * ours (`user-agent`/`connection`, `accept`/`expect`, `content-type`/`laneway-hops`); checking the
   * first letter too lets them through without case-folding or a Map lookup.
   */
  readonly #shapes = new Uint8Array(1 << 16);

  constructor(routingKeyName: string) {
    this.keyName = routingKeyName;
    const lower = routingKeyName.toLowerCase();
    const entries: [string, number][] = [
      ['connection', CONNECTION],
      ['keep-alive', DROP],
      ['proxy-connection', DROP],
      ['te', DROP],
      ['trailer', DROP], // request trailers are not forwarded, so neither is their announcement
      ['transfer-encoding', TRANSFER_ENCODING],
      ['upgrade', UPGRADE],
      ['expect', DROP], // Node answers `100 Continue` itself; the upstream sees a plain request
      ['proxy-authorization', DROP],
      ['baggage', BAGGAGE],
      ['tracestate', TRACESTATE],
      [`ot-baggage-${lower}`, OT_BAGGAGE],
      [`uberctx-${lower}`, UBERCTX],
      [HOPS_HEADER, HOPS],
      [FORK_HEADER, DROP], // ours to set (outcome.ts), never a client's: it picks a local fork at the lane relay
      ['content-length', CONTENT_LENGTH],
      ['forwarded', FORWARDED],
      ['host', HOST], // every request has one: duplicates are a 400 (RFC 9112 §3.2)
    ];
    for (const [name, kind] of entries) {
      this.#kinds.set(name, kind);
      this.#shapes[shape(name)] = 1;
    }
    // Clients spell it `Host`: spare the hot path the lower-casing for the one header every request has.
    this.#kinds.set('Host', HOST);
  }

  kind(name: string): number {
    if (name.length > 255 || this.#shapes[shape(name)] === 0) return KEEP;
    return this.#kinds.get(name) ?? this.#kinds.get(name.toLowerCase()) ?? KEEP;
  }

  /** The routing-key carriers and our hop counter: never hop-by-hop, whatever `Connection` lists. */
  isProtected(lowerName: string): boolean {
    const kind = this.kind(lowerName);
    return kind === BAGGAGE || kind === TRACESTATE || kind === OT_BAGGAGE || kind === UBERCTX || kind === HOPS;
  }
}

/** length and ASCII-lowercased first character, packed in one small integer */
function shape(name: string): number {
  return (name.length << 8) | ((name.charCodeAt(0) | 0x20) & 0xff);
}

/** The result of scanning one request's headers. Allocated once per request. */
export class InboundHeaders {
  /** flat `[name, value, name, value, …]` list to forward (undici and node accept this form) */
  readonly forward: string[] = [];
  baggage: string | undefined = undefined;
  tracestate: string | undefined = undefined;
  otBaggage: string | undefined = undefined;
  uberctx: string | undefined = undefined;
  connection: string | undefined = undefined;
  upgrade: string | undefined = undefined;
  forwarded = false;
  hops = 0;
  hasBody = false;
  /** a Transfer-Encoding header was sent (Node has already refused it together with Content-Length) */
  transferEncoding = false;
  host = false;
  /** set when the request must not be forwarded as it stands (answered by the sidecar itself) */
  problem: SidecarErrorCode | undefined = undefined;

  /**
   * The routing key (README "Where the routing key comes from"): carriers are consulted in the order
   * baggage → ot-baggage-* → uberctx-* → tracestate; the first that holds a well-formed member for the
   * key decides, even when that key has no route; within one carrier (all its lines form one list,
   * RFC 9110 §5.3) the last well-formed member wins, as OpenTelemetry does for baggage.
   */
  routingKey(name: string): string | undefined {
    let key: string | undefined;
    if (this.baggage !== undefined) key = findBaggageValue(this.baggage, name);
    if (key === undefined && this.otBaggage !== undefined) key = findLastSingleValue(this.otBaggage);
    if (key === undefined && this.uberctx !== undefined) key = findLastSingleValue(this.uberctx);
    if (key === undefined && this.tracestate !== undefined) key = findTracestateValue(this.tracestate, name);
    return key;
  }
}

function join(previous: string | undefined, value: string): string {
  // Several header lines of one list-valued field are one list (RFC 9110 §5.3).
  return previous === undefined ? value : `${previous},${value}`;
}

export function scanHeaders(raw: readonly string[], rules: HeaderRules): InboundHeaders {
  const out = new InboundHeaders();
  if (raw.length > 2 * MAX_REQUEST_HEADERS) {
    out.problem = 'LANEWAY_ERR_TOO_MANY_HEADERS';
    return out;
  }
  const forward = out.forward;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    switch (rules.kind(name)) {
      case KEEP:
        forward.push(name, value);
        break;
      case DROP:
        break;
      case BAGGAGE:
        out.baggage = join(out.baggage, value);
        forward.push(name, value);
        break;
      case TRACESTATE:
        out.tracestate = join(out.tracestate, value);
        forward.push(name, value);
        break;
      case OT_BAGGAGE:
        out.otBaggage = join(out.otBaggage, value);
        forward.push(name, value);
        break;
      case UBERCTX:
        out.uberctx = join(out.uberctx, value);
        forward.push(name, value);
        break;
      case CONNECTION:
        out.connection = join(out.connection, value);
        break;
      case HOPS: {
        const n = Number(value);
        out.hops = Number.isInteger(n) && n > 0 ? n : 0;
        break;
      }
      case CONTENT_LENGTH:
        if (value !== '0') out.hasBody = true;
        forward.push(name, value);
        break;
      case TRANSFER_ENCODING:
        out.hasBody = true;
        out.transferEncoding = true;
        break;
      case UPGRADE:
        out.upgrade = value;
        break;
      case FORWARDED:
        out.forwarded = true;
        forward.push(name, value);
        break;
      case HOST:
        if (out.host) out.problem = 'LANEWAY_ERR_BAD_REQUEST';
        out.host = true;
        forward.push(name, value);
        break;
    }
  }
  if (out.connection !== undefined) dropConnectionListed(out.connection, forward, rules);
  return out;
}

export const SLASH = 0x2f;

/**
 * RFC 9112 framing rules Node's parser leaves to us, recorded in `inbound.problem`: an HTTP/1.1 request must carry
 * Host (§3.2; Node's own check answers a bare 400, so the sidecar does it to answer with its JSON error), and an
 * HTTP/1.0 message with Transfer-Encoding has faulty framing (§6.1). One comparison per request.
 */
export function checkFraming(inbound: InboundHeaders, httpVersionMinor: number): void {
  if (httpVersionMinor === 0 ? inbound.transferEncoding : !inbound.host) inbound.problem ??= 'LANEWAY_ERR_BAD_REQUEST';
}

/**
 * Why a request is answered by the sidecar instead of forwarded, or undefined. Absolute-form targets
 * (RFC 9112 §3.2.2) are for forward proxies; the sidecar fronts one app, so a request naming another
 * authority is the client's mistake, answered 400 rather than rewritten. `*` (asterisk-form, §3.2.4)
 * cannot be sent by the upstream client. Shared with the upgrade path, so a tunnel gets the same checks.
 */
export function requestProblem(url: string, inbound: InboundHeaders): SidecarErrorCode | undefined {
  if (inbound.problem !== undefined) return inbound.problem;
  return url.charCodeAt(0) === SLASH ? undefined : 'LANEWAY_ERR_BAD_REQUEST';
}

/**
 * Removes headers named in `Connection` (RFC 9110 §7.6.1) from a flat name/value list; rare, so it may allocate.
 * With `rules` (requests), the routing-key carriers stay: a client must not be able to route by a key and
 * then have it stripped from what the fork receives, so the fork's own outgoing calls lose the lane.
 */
export function dropConnectionListed(connection: string, forward: string[], rules?: HeaderRules): void {
  // The usual values name no extra headers: skip the split (seen at 0.5% self time under load).
  if (connection.length <= 10) {
    const lower = connection.toLowerCase();
    if (lower === 'keep-alive' || lower === 'close' || lower === 'upgrade') return;
  }
  const listed = new Set<string>();
  for (const token of connection.toLowerCase().split(',')) {
    const t = token.trim();
    if (t && t !== 'close' && t !== 'keep-alive' && t !== 'upgrade' && !(rules !== undefined && rules.isProtected(t))) listed.add(t);
  }
  if (listed.size === 0) return;
  let w = 0;
  for (let r = 0; r < forward.length; r += 2) {
    const name = forward[r] as string;
    if (listed.has(name.toLowerCase())) continue;
    forward[w++] = name;
    forward[w++] = forward[r + 1] as string;
  }
  forward.length = w;
}

/** Response headers never relayed to the client (hop-by-hop); Node writes its own framing. */
export function isHopByHopResponseHeader(name: string): boolean {
  switch (name.length) {
    case 10:
      return equalsLower(name, 'connection') || equalsLower(name, 'keep-alive');
    case 16:
      return equalsLower(name, 'proxy-connection');
    case 17:
      return equalsLower(name, 'transfer-encoding');
    case 7:
      return equalsLower(name, 'upgrade');
    default:
      return false;
  }
}

function equalsLower(name: string, lower: string): boolean {
  return name === lower || name.toLowerCase() === lower;
}
