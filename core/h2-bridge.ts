// Protocol plumbing for relaying requests over HTTP/2 streams: header conversion between HTTP/1.1 and HTTP/2, and stream-to-stream relay.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders as H2Headers, type ServerHttp2Stream } from 'node:http2';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_FLAG_END_STREAM } = constants;

/** Connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2); `te` is kept only as `trailers`. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

/** An HTTP/1.1 request's headers as HTTP/2 request headers (pseudo-headers from the request line and Host). */
export function h1RequestToH2(req: IncomingMessage, extra: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ':method': req.method ?? 'GET',
    ':path': req.url ?? '/',
    ':scheme': 'http',
    ':authority': req.headers.host ?? 'localhost',
  };
  copyFields(req.headers, out);
  return Object.assign(out, extra);
}

/** HTTP/2 request headers as HTTP/1.1 ones (Host from :authority; pseudo-headers and `omit` dropped). */
export function h2RequestToH1(headers: H2Headers, omit: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.charCodeAt(0) === 0x3a || value === undefined || omit.includes(name)) continue;
    // HTTP/2 splits cookies into several fields; HTTP/1.1 wants one line (RFC 9113 §8.2.3).
    out[name] = name === 'cookie' && Array.isArray(value) ? value.join('; ') : value;
  }
  if (headers[':authority'] !== undefined) out.host = headers[':authority'];
  return out;
}

/** An HTTP/1.1 response's headers for an HTTP/2 stream. */
export function h1ResponseToH2(status: number, headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': status };
  copyFields(headers, out);
  return out;
}

/** An HTTP/2 response's headers for an HTTP/1.1 response (pseudo-headers dropped). */
export function h2ResponseToH1(headers: H2Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.charCodeAt(0) !== 0x3a && value !== undefined) out[name] = value;
  }
  return out;
}

function copyFields(from: IncomingHttpHeaders, to: OutgoingHttpHeaders): void {
  for (const [name, value] of Object.entries(from)) {
    if (value === undefined || CONNECTION_SPECIFIC.has(name)) continue;
    if (name === 'te') {
      if (String(value).toLowerCase().includes('trailers')) to.te = 'trailers';
      continue;
    }
    to[name] = value;
  }
}

/** Same as `h2ResponseToH1` but for relaying to another HTTP/2 stream: only the fields a server may not send again. */
function responseHeaders(headers: H2Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && (name === ':status' || name.charCodeAt(0) !== 0x3a)) out[name] = value;
  }
  return out;
}

/**
 * Relays one HTTP/2 exchange from `inbound` (a stream we serve) to `outbound` (a stream we opened):
 * body both ways with HTTP/2 flow control as backpressure, response headers, trailers (gRPC status),
 * a reset either way propagated as CANCEL (a client's cancel reaches the server, a server's reset the
 * client). `failed` answers the inbound stream when the outbound one fails before its response.
 */
export function relayH2(inbound: ServerHttp2Stream, outbound: ClientHttp2Stream, timeoutMs: number, failed: (reason: string) => void): void {
  let responded = false;
  let trailers: OutgoingHttpHeaders | undefined;
  const timer = setTimeout(() => {
    if (!responded) {
      outbound.close(NGHTTP2_CANCEL);
      failed(`no response within ${timeoutMs} ms`);
    }
  }, timeoutMs);
  timer.unref();
  inbound.pipe(outbound);
  outbound.on('response', (headers, flags) => {
    responded = true;
    clearTimeout(timer);
    if (inbound.destroyed) return;
    // A trailers-only answer (gRPC errors): headers with END_STREAM, nothing after them.
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
      inbound.respond(responseHeaders(headers), { endStream: true });
      return;
    }
    inbound.respond(responseHeaders(headers), { waitForTrailers: true });
    outbound.pipe(inbound);
  });
  outbound.on('trailers', (headers) => (trailers = responseHeaders(headers)));
  inbound.on('wantTrailers', () => inbound.sendTrailers(trailers ?? {}));
  outbound.on('error', () => {});
  inbound.on('error', () => {});
  outbound.on('close', () => {
    clearTimeout(timer);
    if (!responded && !inbound.destroyed) failed(outbound.rstCode === undefined || outbound.rstCode === NGHTTP2_NO_ERROR ? 'stream closed' : `stream reset (code ${outbound.rstCode})`);
    else if (outbound.rstCode !== undefined && outbound.rstCode !== NGHTTP2_NO_ERROR && !inbound.destroyed) inbound.close(outbound.rstCode);
  });
  inbound.on('close', () => {
    clearTimeout(timer);
    if (!outbound.destroyed && (inbound.rstCode ?? NGHTTP2_NO_ERROR) !== NGHTTP2_NO_ERROR) outbound.close(NGHTTP2_CANCEL);
  });
}
