// One outcome for every protocol (HTTP/1, HTTP/2, upgrades): the code of an upstream failure, when a sandbox may fall
// back to the baseline, and the headers a forwarded request gains. The forwarders only do protocol I/O around it.
import type { OutgoingHttpHeaders } from 'node:http2';
import type { SidecarErrorCode } from './errors.js';
import { FORK_HEADER } from '../core/constants.js';
import { HOPS_HEADER, type InboundHeaders } from './headers.js';

/** Failures before a byte reached the upstream: safe to send elsewhere (`--fallback baseline`). */
export const CONNECT_PHASE: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);
/** Failure codes (undici's and the sockets') that mean "too slow" rather than "refused". */
export const TIMEOUTS: ReadonlySet<string> = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/** The code a client sees when its upstream failed: which side (sandbox or baseline) and how (timeout or unreachable). */
export function upstreamFailure(sandbox: boolean, timeout: boolean): SidecarErrorCode {
  if (sandbox) return timeout ? 'LANEWAY_ERR_SANDBOX_TIMEOUT' : 'LANEWAY_ERR_SANDBOX_UNREACHABLE';
  return timeout ? 'LANEWAY_ERR_BASELINE_TIMEOUT' : 'LANEWAY_ERR_BASELINE_UNREACHABLE';
}

/** As upstreamFailure, from an error's `code`. */
export function upstreamFailureOf(sandbox: boolean, code: string): SidecarErrorCode {
  return upstreamFailure(sandbox, TIMEOUTS.has(code));
}

/**
 * `--fallback baseline`: a request for a sandbox is served by the baseline only when the sandbox could
 * not be reached at all (connect phase) and nothing of the request has been consumed, so the baseline
 * gets exactly what the client sent and nothing reached the fork.
 */
export function mayFallBack(fallbackToBaseline: boolean, sandbox: boolean, code: string, bodyConsumed: boolean): boolean {
  return fallbackToBaseline && sandbox && !bodyConsumed && CONNECT_PHASE.has(code);
}

/** The response header that says the baseline answered a request meant for a sandbox. */
export const FALLBACK_HEADER = 'laneway-fallback';

/**
 * What an HTTP/1 request (plain or upgrade) gains on the way out: the client address in
 * `x-forwarded-for` (and in `forwarded` when the request had one), `via`, and toward a sandbox the hop
 * count and `laneway-fork` (`fork`: this workload and app port; null on the baseline path).
 */
export function pushForwardingHeaders(headers: string[], peer: string | undefined, inbound: InboundHeaders, fork: string | null): void {
  if (peer !== undefined) {
    headers.push('x-forwarded-for', peer);
    if (inbound.forwarded) headers.push('forwarded', peer.includes(':') ? `for="[${peer}]"` : `for=${peer}`);
  }
  headers.push('via', '1.1 laneway');
  if (fork !== null) headers.push(HOPS_HEADER, String(inbound.hops + 1), FORK_HEADER, fork);
}

/** Takes back what `pushForwardingHeaders` added toward a sandbox: a fallback to the baseline carries neither the hop count nor `laneway-fork`. */
export function dropSandboxHeaders(headers: string[]): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === HOPS_HEADER || headers[i] === FORK_HEADER) headers.splice(i, 2);
}

/** The same for an HTTP/2 stream, whose headers are one object (values joined instead of repeated lines). */
export function setH2ForwardingHeaders(out: OutgoingHttpHeaders, inbound: { readonly xff?: string; readonly forwarded?: string; readonly via?: string }, peer: string | undefined, hops: number, fork: string | null): void {
  const { xff, forwarded, via } = inbound;
  if (peer) {
    out['x-forwarded-for'] = xff ? `${xff}, ${peer}` : peer;
    if (forwarded) out.forwarded = `${forwarded}, ${peer.includes(':') ? `for="[${peer}]"` : `for=${peer}`}`;
  }
  out.via = via ? `${via}, 2 laneway` : '2 laneway';
  if (fork !== null) {
    out[HOPS_HEADER] = String(hops + 1);
    out[FORK_HEADER] = fork;
  } else {
    delete out[HOPS_HEADER];
    delete out[FORK_HEADER];
  }
}
