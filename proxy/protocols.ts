// Each app port's upstream protocol (`--port L:A/<protocol>`) and a fork target's own (`h2c://`, `http://`): names and resolution.
import { TARGET_H2C, TARGET_HTTP1, TARGET_INHERIT, type Target } from '../model/route-table.js';

/** No suffix: the upstream is spoken to in the client's protocol (no translation; the behaviour before per-port protocols). */
export const AS_CLIENT = 0;
/** `/http1`: the app speaks HTTP/1.1 only; HTTP/2 clients are translated. Same value as the route model's TARGET_HTTP1. */
export const HTTP1 = TARGET_HTTP1;
/** `/h2c`: the app speaks HTTP/2 cleartext (prior knowledge) only, gRPC included; HTTP/1.1 clients are translated. */
export const H2C = TARGET_H2C;
/** `/auto`: learned per upstream by a probe (proxy/protocol-memo.ts); never by resending a request. */
export const AUTO = 3;
export type UpstreamProtocol = typeof AS_CLIENT | typeof HTTP1 | typeof H2C | typeof AUTO;

/** The `--port` suffixes, in the order the README and the error message list them. */
export const PROTOCOL_NAMES: Readonly<Record<string, UpstreamProtocol>> = Object.freeze({ http1: HTTP1, h2c: H2C, auto: AUTO });

/** For logs and metrics labels. */
export function protocolName(protocol: UpstreamProtocol): string {
  return protocol === HTTP1 ? 'http1' : protocol === H2C ? 'h2c' : protocol === AUTO ? 'auto' : 'client';
}

/**
 * The protocol a request to `target` is sent in: the target's own when its address names one, else its app
 * port's. Both are resolved before any request (the port's at startup, the target's when the table is built).
 */
export function targetProtocol(target: Target, port: UpstreamProtocol): UpstreamProtocol {
  return target.protocol === TARGET_INHERIT ? port : target.protocol;
}

/**
 * gRPC needs HTTP/2 end to end (trailers carry its status; HTTP/1.1 intermediaries may drop them), so a gRPC
 * request is never translated. gRPC-Web (`application/grpc-web…`) is made for HTTP/1.1 and is not gRPC here.
 */
export function isGrpcContentType(value: string | undefined): boolean {
  if (value === undefined || value.length < 16) return false;
  if (value.slice(0, 16).toLowerCase() !== 'application/grpc') return false;
  const next = value.charCodeAt(16);
  return Number.isNaN(next) || next === 0x2b /* + */ || next === 0x3b /* ; */ || next === 0x20;
}
