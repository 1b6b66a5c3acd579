// Finds one routing key in W3C Baggage (and other tracers' conventions) with a scan: no split, no regex, no member records.

/** W3C Baggage §3.3.1 (limits): a platform propagates at least 64 members and 8192 bytes; we honour 180 / 8192. */
export const BAGGAGE_MAX_MEMBERS = 180;
export const BAGGAGE_MAX_BYTES = 8192;

const COMMA = 0x2c;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const SPACE = 0x20;
const TAB = 0x09;
const PERCENT = 0x25;

function isOws(c: number): boolean {
  return c === SPACE || c === TAB;
}

/**
 * baggage-octet (W3C Baggage §3.2.1.1): %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E —
 * printable US-ASCII except DQUOTE, comma, semicolon and backslash.
 */
function isBaggageOctet(c: number): boolean {
  return c >= 0x21 && c <= 0x7e && c !== 0x22 && c !== COMMA && c !== SEMICOLON && c !== 0x5c;
}

/**
 * Below this length no member can lie past the 180-member or 8192-byte limits (181 non-empty
 * members need at least 361 characters), so the scan may jump straight to occurrences of the name.
 */
const SHORT_HEADER = 2 * BAGGAGE_MAX_MEMBERS;

/**
 * Returns the decoded value of the member named `name` in a `baggage` header value (several
 * headers joined with `,` form one list), or undefined.
 *
 * - A header that does not contain `name` at all costs one `indexOf` (the common, keyless case).
 * - Short headers (the usual ~10 members) jump from one occurrence of `name` to the next and check
 *   that it starts a member; longer ones are walked member by member so the limits can be counted.
 * - A malformed member is skipped, never fatal, and never hides a later valid one.
 * - Duplicate keys: the last valid member wins, as OpenTelemetry JS does.
 * - Members past the 180th or extending beyond byte 8192 are dropped (W3C Baggage §3.3.1).
 */
export function findBaggageValue(header: string, name: string): string | undefined {
  let at = header.indexOf(name);
  if (at === -1) return undefined;
  if (header.length > SHORT_HEADER) return walkMembers(header, name);
  let found: string | undefined;
  while (at !== -1) {
    let b = at - 1;
    while (b >= 0 && isOws(header.charCodeAt(b))) b--;
    if (b === -1 || header.charCodeAt(b) === COMMA) {
      let end = header.indexOf(',', at);
      if (end === -1) end = header.length;
      const value = valueAfterKey(header, at + name.length, end);
      if (value !== undefined) found = value;
      at = header.indexOf(name, end);
    } else {
      at = header.indexOf(name, at + 1);
    }
  }
  return found;
}

/** The full walk, counting members for the limits: used for long headers, and the reference the fast path is tested against. */
export function walkMembers(header: string, name: string): string | undefined {
  const length = header.length;
  const nameLength = name.length;
  let found: string | undefined;
  let start = 0;
  let members = 0;
  while (start < length && members < BAGGAGE_MAX_MEMBERS) {
    let end = header.indexOf(',', start);
    if (end === -1) end = length;
    if (end > BAGGAGE_MAX_BYTES) break;
    let p = start;
    while (p < end && isOws(header.charCodeAt(p))) p++;
    if (p < end) members++;
    if (end - p > nameLength && header.startsWith(name, p)) {
      const value = valueAfterKey(header, p + nameLength, end);
      if (value !== undefined) found = value;
    }
    start = end + 1;
  }
  return found;
}

/** At `p` just after a key that matched `name`: OWS, `=`, then the value up to `end`; undefined when not `name=value`. */
function valueAfterKey(header: string, p: number, end: number): string | undefined {
  while (p < end && isOws(header.charCodeAt(p))) p++;
  if (p >= end || header.charCodeAt(p) !== EQUALS) return undefined;
  return parseValue(header, p + 1, end);
}

/** Value between `from` (just after `=`) and `end`: OWS trimmed, properties after `;` dropped, percent-decoded. */
function parseValue(header: string, from: number, end: number): string | undefined {
  let p = from;
  while (p < end && isOws(header.charCodeAt(p))) p++;
  let stop = p;
  let encoded = false;
  while (stop < end) {
    const c = header.charCodeAt(stop);
    if (c === SEMICOLON || isOws(c)) break;
    if (!isBaggageOctet(c)) return undefined;
    if (c === PERCENT) encoded = true;
    stop++;
  }
  // After the value only OWS, then either the end of the member or `;` properties may follow.
  let q = stop;
  while (q < end && isOws(header.charCodeAt(q))) q++;
  if (q < end && header.charCodeAt(q) !== SEMICOLON) return undefined;
  if (stop === p) return undefined; // empty value: nothing to route on
  const raw = header.substring(p, stop);
  return encoded ? percentDecode(raw) : raw;
}

/** Percent-decoding (UTF-8); undefined when the escapes are malformed, so the member is dropped. */
export function percentDecode(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * The value of member `name` in a W3C `tracestate` header (vendor list `key=value,…`, §3.3.1.3),
 * the last place we look for a routing key. Values are opaque (no percent-decoding). Keys should be
 * unique; when a sender repeats one anyway, the last member wins, as for every carrier.
 */
export function findTracestateValue(header: string, name: string): string | undefined {
  if (header.indexOf(name) === -1) return undefined;
  const length = header.length;
  let found: string | undefined;
  let start = 0;
  while (start < length) {
    let end = header.indexOf(',', start);
    if (end === -1) end = length;
    let p = start;
    while (p < end && isOws(header.charCodeAt(p))) p++;
    if (header.startsWith(name, p) && header.charCodeAt(p + name.length) === EQUALS) {
      let valueEnd = end;
      while (valueEnd > p && isOws(header.charCodeAt(valueEnd - 1))) valueEnd--;
      if (valueEnd > p + name.length + 1) found = header.substring(p + name.length + 1, valueEnd);
    }
    start = end + 1;
  }
  return found;
}

/** `ot-baggage-<name>` / `uberctx-<name>` values: URL-encoded by some tracers, so decode when escaped. */
export function decodeSingleValue(value: string): string | undefined {
  let v = value.trim();
  if (v.length === 0) return undefined;
  if (v.indexOf('%') !== -1) {
    const decoded = percentDecode(v);
    if (decoded === undefined) return undefined;
    v = decoded;
  }
  return v;
}

/**
 * Several `ot-baggage-<name>` / `uberctx-<name>` lines, joined with `,` into one list (RFC 9110 §5.3;
 * tracers URL-encode a literal comma): the last well-formed value wins. One line costs one `indexOf`.
 */
export function findLastSingleValue(list: string): string | undefined {
  let end = list.length;
  let comma = list.lastIndexOf(',');
  if (comma === -1) return decodeSingleValue(list);
  while (end >= 0) {
    const value = decodeSingleValue(list.substring(comma + 1, end));
    if (value !== undefined) return value;
    end = comma;
    comma = end > 0 ? list.lastIndexOf(',', end - 1) : -1;
  }
  return undefined;
}
