// A strict parser for the common HTTP/1.1 request head (RFC 9112), for a raw-socket fast path: it accepts or it hands over.
//
// It never rejects and never guesses. A head it fully understands — a common method, an origin-form target, HTTP/1.1,
// one Host, plain token names and printable values, at most one of Content-Length (digits) or Transfer-Encoding:
// chunked, no Upgrade or Expect — is parsed into what routing needs; anything else (every framing ambiguity request
// smuggling relies on, obs-fold, bare CR or LF, HTTP/1.0, CONNECT, obs-text…) answers FALLBACK, and the connection goes
// to Node's own parser (llhttp), which accepts or refuses it as today. test/proxy/h1-head.test.ts feeds random and
// adversarial heads to this parser and to llhttp: whatever this accepts, llhttp accepts with the same parse.

/** The head is not complete yet: read more. */
export const HEAD_INCOMPLETE = 0;
/** Not a head this parser understands: give the bytes, untouched, to Node's parser. */
export const HEAD_FALLBACK = -1;

/** Node's default `maxHeaderSize` (16 KiB): a longer head goes to Node, which answers 431. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Header lines one head may have on the fast path (the general path allows MAX_REQUEST_HEADERS). */
export const MAX_FAST_HEADERS = 100;
/** A longer method name is not one this parser knows. */
const MAX_METHOD_LENGTH = 7;
/** Content-Length digits: 15 keep the value an exact integer. */
const MAX_LENGTH_DIGITS = 15;

export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;

/** What a parsed head tells the fast path; one object per connection, reused for every request. */
export class RequestHead {
  method = '';
  target = '';
  /** name, value, name, value… as written (`req.rawHeaders`'s shape) */
  rawHeaders: string[] = [];
  body: typeof BODY_NONE | typeof BODY_LENGTH | typeof BODY_CHUNKED = BODY_NONE;
  contentLength = 0;
  /** false when the client sent `Connection: close` */
  keepAlive = true;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

/** tchar (RFC 9110 §5.6.2): the characters of a header name and a method. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** origin-form characters (RFC 3986 pchar, `/` and `?`, with `%`): anything else in a target goes to Node. */
const TARGET = new Uint8Array(128);
for (const c of "-._~!$&'()*+,;=:@/?%") TARGET[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TARGET[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TARGET[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TARGET[c] = 1;

/** The methods the fast path takes; CONNECT (a tunnel) and the rest go to Node. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

const VERSION = Buffer.from(' HTTP/1.1\r\n', 'latin1');

/** `name` (any case) equals `lower`: headers checked by length before case-folding, as undici does. */
function isNamed(name: string, lower: string): boolean {
  return name.length === lower.length && name.toLowerCase() === lower;
}

/**
 * Parses the head starting at `start`: the offset just past its empty line, HEAD_INCOMPLETE, or HEAD_FALLBACK.
 * `out` is filled only for a parsed head.
 */
export function parseRequestHead(buf: Buffer, start: number, out: RequestHead): number {
  const end = buf.length;
  // The method: tchars up to the first space.
  let p = start;
  const methodLimit = Math.min(end, start + MAX_METHOD_LENGTH + 1);
  while (p < methodLimit && buf[p] !== SP) {
    if (TCHAR[buf[p]!] !== 1) return HEAD_FALLBACK;
    p++;
  }
  if (p === methodLimit) return p === end && p - start <= MAX_METHOD_LENGTH ? HEAD_INCOMPLETE : HEAD_FALLBACK;
  const method = buf.toString('latin1', start, p);
  if (!METHODS.has(method)) return HEAD_FALLBACK;
  // The target: origin-form only.
  const targetStart = ++p;
  if (p < end && buf[p] !== 0x2f) return HEAD_FALLBACK;
  while (p < end && buf[p] !== SP) {
    const c = buf[p]!;
    if (c >= 0x80 || TARGET[c] !== 1) return HEAD_FALLBACK;
    p++;
  }
  if (p - start > MAX_HEAD_BYTES) return HEAD_FALLBACK;
  if (p === end) return HEAD_INCOMPLETE;
  if (p === targetStart) return HEAD_FALLBACK;
  const targetEnd = p;
  // The version: exactly HTTP/1.1 and CRLF.
  for (let i = 0; i < VERSION.length; i++, p++) {
    if (p === end) return HEAD_INCOMPLETE;
    if (buf[p] !== VERSION[i]) return HEAD_FALLBACK;
  }
  const raw: string[] = [];
  let hosts = 0;
  let lengthSeen = false;
  let chunked = false;
  let keepAlive = true;
  let contentLength = 0;
  for (;;) {
    if (p - start > MAX_HEAD_BYTES) return HEAD_FALLBACK;
    if (p === end) return HEAD_INCOMPLETE;
    if (buf[p] === CR) {
      if (p + 1 === end) return HEAD_INCOMPLETE;
      if (buf[p + 1] !== LF) return HEAD_FALLBACK;
      p += 2;
      break;
    }
    if (raw.length === 2 * MAX_FAST_HEADERS) return HEAD_FALLBACK;
    // name: tchars up to the colon (a space before it, or a line starting with one — obs-fold — goes to Node)
    const nameStart = p;
    while (p < end && buf[p] !== COLON) {
      const c = buf[p]!;
      if (c >= 0x80 || TCHAR[c] !== 1) return HEAD_FALLBACK;
      p++;
    }
    if (p === end) return p - start > MAX_HEAD_BYTES ? HEAD_FALLBACK : HEAD_INCOMPLETE;
    if (p === nameStart) return HEAD_FALLBACK;
    const name = buf.toString('latin1', nameStart, p);
    p++;
    while (p < end && (buf[p] === SP || buf[p] === HTAB)) p++;
    // value: printable ASCII, spaces and tabs, up to CRLF; trailing whitespace is not part of it
    const valueStart = p;
    let valueEnd = p;
    while (p < end) {
      const c = buf[p]!;
      if (c === CR) break;
      if (c === HTAB || c === SP) {
        p++;
        continue;
      }
      if (c < 0x21 || c > 0x7e) return HEAD_FALLBACK;
      valueEnd = ++p;
    }
    if (p + 1 >= end) return p - start > MAX_HEAD_BYTES ? HEAD_FALLBACK : HEAD_INCOMPLETE;
    if (buf[p + 1] !== LF) return HEAD_FALLBACK;
    p += 2;
    const value = buf.toString('latin1', valueStart, valueEnd);
    raw.push(name, value);
    // The few names framing and routing depend on; each checked by length first.
    switch (name.length) {
      case 4:
        if (isNamed(name, 'host')) hosts++;
        break;
      case 6:
        if (isNamed(name, 'expect')) return HEAD_FALLBACK;
        break;
      case 7:
        if (isNamed(name, 'upgrade')) return HEAD_FALLBACK;
        break;
      case 10:
        if (isNamed(name, 'connection')) {
          if (isNamed(value, 'close')) keepAlive = false;
          else if (!isNamed(value, 'keep-alive')) return HEAD_FALLBACK;
        }
        break;
      case 14:
        if (isNamed(name, 'content-length')) {
          if (lengthSeen || value.length === 0 || value.length > MAX_LENGTH_DIGITS) return HEAD_FALLBACK;
          for (let i = 0; i < value.length; i++) {
            const c = value.charCodeAt(i);
            if (c < 0x30 || c > 0x39) return HEAD_FALLBACK;
          }
          lengthSeen = true;
          contentLength = Number(value);
        }
        break;
      case 17:
        if (isNamed(name, 'transfer-encoding')) {
          if (chunked || !isNamed(value, 'chunked')) return HEAD_FALLBACK;
          chunked = true;
        }
        break;
    }
  }
  if (hosts !== 1 || (chunked && lengthSeen)) return HEAD_FALLBACK;
  out.method = method;
  out.target = buf.toString('latin1', targetStart, targetEnd);
  out.rawHeaders = raw;
  out.body = chunked ? BODY_CHUNKED : lengthSeen && contentLength > 0 ? BODY_LENGTH : BODY_NONE;
  out.contentLength = contentLength;
  out.keepAlive = keepAlive;
  return p;
}
