// The local-lane wire contract shared by the control plane's relay and `laneway connect`: the tunnel handshake, headers and limits.
import { WORKLOAD_RE, ROUTING_KEY_RE } from '../core/names.js';

/** A fork target meaning "the machine that connected this sandbox's lane" (`targets: {"8080": "local"}`). */
export const LOCAL_TARGET = 'local';

/** The HTTP/1.1 Upgrade token of the tunnel: after 101 the connection carries HTTP/2, the relay as client, the laptop as server. */
export const LANE_UPGRADE = 'laneway-lane';

/** The tunnel's endpoint on the control plane's API listener. */
export function lanePath(sandbox: string): string {
  return `/v1/sandboxes/${encodeURIComponent(sandbox)}/lane`;
}

/**
 * Sent by `laneway connect` on every (re)connect: a random secret of its own. The first session to
 * connect a sandbox's lane owns it; another laptop presenting another session is refused (409) —
 * one laptop cannot take over another's lane — while the same laptop reconnects freely.
 */
export const LANE_SESSION_HEADER = 'laneway-lane-session';
export const LANE_SESSION_RE = /^[A-Za-z0-9_-]{22,128}$/;

/** On each tunnelled stream: how the sidecar's client spoke, so the laptop speaks the same to its local service. */
export const LANE_KIND_HEADER = 'laneway-lane-kind';
export type LaneKind = 'h2' | 'upgrade' | 'tcp' | 'expose';

/**
 * Exposures (`laneway connect --expose`): the laptop's local service calls cluster services through
 * the same tunnel. The laptop cannot open streams (it is the HTTP/2 server), so the relay keeps this
 * many CONNECT streams open to it, idle; the laptop answers one with `laneway-expose: <host:port>`
 * when a local connection arrives, and the relay connects there (if its target policy allows) and
 * relays raw bytes. Each used stream is replaced at once.
 */
export const EXPOSE_STANDBY_STREAMS = 4;
export const EXPOSE_HEADER = 'laneway-expose';
/** How long a local connection to an exposure waits for a standby stream before it is closed. */
export const EXPOSE_WAIT_MS = 5_000;

/** `--expose` target as given: `<namespace>/<name>:<port>` (the Service, resolved in the cluster) or `host:port`. */
export function exposeAddress(spec: string): string | undefined {
  const service = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?):([0-9]{1,5})$/.exec(spec);
  if (service !== null) return `${service[3]}.${service[1]}.svc:${service[5]}`;
  return /^[^\s/]+:[0-9]{1,5}$/.test(spec) ? spec : undefined;
}

/**
 * Streams one tunnel carries at once for sidecars — their CONNECT-tunnelled HTTP/1.1 connections
 * (idle keep-alive ones included), HTTP/2 requests and upgrades — counted by the relay (HTTP/2
 * would otherwise queue more without bound); more are answered 503 LANEWAY_ERR_LANE_BUSY at once.
 * Exposure streams have the same cap of their own.
 */
export const LANE_MAX_STREAMS = 256;
/** How often the relay pings the laptop; no answer within the same time closes the tunnel (its requests then get 502). */
export const LANE_PING_INTERVAL_MS = 2_000;
/** Time from a tunnelled request to its response headers, as the sidecar's own upstream timeout. */
export const LANE_RESPONSE_TIMEOUT_MS = 30_000;
/** The tunnel handshake (TCP, request, 101) must complete within this. */
export const LANE_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ForkRef {
  readonly key: string;
  readonly workload: string;
  readonly port: string;
}

/** `laneway-fork: <key>@<namespace>/<name>:<port>` (core/constants.ts FORK_HEADER); undefined when malformed. */
export function parseForkHeader(value: string | string[] | undefined): ForkRef | undefined {
  if (typeof value !== 'string') return undefined;
  const at = value.indexOf('@');
  const colon = value.lastIndexOf(':');
  if (at <= 0 || colon < at) return undefined;
  const key = value.slice(0, at);
  const workload = value.slice(at + 1, colon);
  const port = value.slice(colon + 1);
  if (!ROUTING_KEY_RE.test(key) || !WORKLOAD_RE.test(workload) || !/^[0-9]{1,5}$/.test(port)) return undefined;
  return { key, workload, port };
}
