// Relaying one HTTP/2 exchange from a stream we serve to a stream we opened (the lane relay and laneway connect both do).
import type { OutgoingHttpHeaders } from 'node:http';
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders as H2Headers, type ServerHttp2Stream } from 'node:http2';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_FLAG_END_STREAM } = constants;

/** A response's headers for relaying to another HTTP/2 stream: `:status` and the regular fields (no other pseudo-headers). */
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
