// The route model shared by the sidecar, the control plane and the tests: types, validation, O(1) lookup. No I/O.
import { LanewayError } from '../core/errors.js';
import { BRACKETED_IPV6_RE, HOSTNAME_RE, isDnsLabel, isRoutingKey, isWorkloadName, MAX_KEY_LENGTH, ROUTING_KEY_RULE } from '../core/names.js';
import { parsePort } from '../core/units.js';
import { compileCapture, parseCaptureSpec, type CaptureRule, type CompiledCapture } from './capture.js';

/** A route table that failed validation; `path` points at the offending field (e.g. `routes[3].targets.8080`). */
export class RouteTableError extends LanewayError {
  readonly path: string;
  constructor(path: string, problem: string) {
    super('LANEWAY_ERR_ROUTES_INVALID', 0, `${path}: ${problem}`);
    this.name = 'RouteTableError';
    this.path = path;
  }
}

/** One sandbox's fork of a workload: requests carrying `key` go to `targets[appPort]`. */
export interface Route {
  readonly key: string;
  readonly sandbox: string;
  /**
   * app port (decimal string) → `host:port` of the fork (spoken to in the port's protocol), `h2c://host:port` or
   * `http://host:port` (the fork's own upstream protocol), or `lane://host:port` (a local lane: the relay to dial)
   */
  readonly targets: Readonly<Record<string, string>>;
  /** the sandbox asked for traffic capture (`spec.capture`): the sidecar records what it routes here */
  readonly capture?: CaptureRule;
}

/** The routes-file format, the snapshot endpoint's body and the `snapshot` push event: one shape everywhere. */
export interface RouteSnapshot {
  readonly workload: string;
  readonly revision: number;
  readonly routes: readonly Route[];
}

/** Push-stream deltas (`upsert` / `delete` SSE events); `revision` is the table's revision after applying it. */
export interface UpsertEvent { readonly revision: number; readonly route: Route }
export interface DeleteEvent { readonly revision: number; readonly key: string }

/** A fork target resolved once, when the table is built, so the hot path does no string work. */
export interface Target {
  readonly host: string;
  readonly port: number;
  /** the target as written in the route (the same string, not a copy): the connection-pool key */
  readonly address: string;
  /** a local lane (`lane://`): `host:port` is the lane relay, dialled with HTTP CONNECT per connection */
  readonly lane: boolean;
  /** the fork's upstream protocol: TARGET_INHERIT (the app port's, a bare `host:port`), TARGET_HTTP1 (`http://`) or TARGET_H2C (`h2c://`) */
  readonly protocol: TargetProtocol;
}

/** A target without a scheme is spoken to as its app port is (`--port …/<protocol>`). */
export const TARGET_INHERIT = 0;
/** `http://host:port`: the fork speaks HTTP/1.1 only. */
export const TARGET_HTTP1 = 1;
/** `h2c://host:port`: the fork speaks HTTP/2 cleartext (prior knowledge) only; gRPC forks say this. */
export const TARGET_H2C = 2;
export type TargetProtocol = typeof TARGET_INHERIT | typeof TARGET_HTTP1 | typeof TARGET_H2C;
export const H2C_SCHEME = 'h2c://';
export const HTTP1_SCHEME = 'http://';

/**
 * The route-table form of a local fork: `lane://<relay host:port>`. Only the control plane writes it
 * (users write `local`); the sidecar dials the relay and tunnels each connection to the laptop.
 */
export const LANE_SCHEME = 'lane://';

/**
 * A route's targets by app port. Routes name 1–16 ports, almost always one: two parallel arrays
 * searched linearly cost ~100 bytes a route where a `Map` cost several hundred (10,000 routes
 * measured 10.5 MB of heap with a Map each).
 */
export class PortTargets {
  readonly #ports: number[];
  readonly #targets: Target[];

  constructor(ports: number[], targets: Target[]) {
    this.#ports = ports;
    this.#targets = targets;
  }

  get(port: number): Target | undefined {
    const ports = this.#ports;
    for (let i = 0; i < ports.length; i++) if (ports[i] === port) return this.#targets[i];
    return undefined;
  }

  /** The `targets` object of the snapshot format, rebuilt on demand (snapshots are rare; lookups are not). */
  toRecord(): Record<string, string> {
    const record: Record<string, string> = {};
    for (let i = 0; i < this.#ports.length; i++) record[String(this.#ports[i])] = this.#targets[i]!.address;
    return record;
  }
}

export interface CompiledRoute {
  readonly key: string;
  readonly sandbox: string;
  /** app port → target */
  readonly targets: PortTargets;
  /** undefined: capture off (the usual case; the hot path checks only this) */
  readonly capture: CompiledCapture | undefined;
  /** as received, for snapshots */
  readonly captureRule: CaptureRule | undefined;
}

// Limits shared with the control plane's API validation.
export { MAX_KEY_LENGTH };
export const MAX_ROUTES = 100_000;

/** Parses `host:port` (host a DNS name, IPv4 or `[IPv6]`); undefined when malformed. */
export function parseHostPort(value: unknown): Target | undefined {
  if (typeof value !== 'string' || value.length > 300) return undefined;
  const colon = value.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = value.slice(0, colon);
  const port = parsePort(value.slice(colon + 1));
  if (port === undefined) return undefined;
  if (!HOSTNAME_RE.test(host) && !BRACKETED_IPV6_RE.test(host)) return undefined;
  return { host, port, address: value, lane: false, protocol: TARGET_INHERIT };
}

/** A route's target: `host:port`, `h2c://host:port`, `http://host:port` or `lane://host:port`; undefined when malformed. */
export function parseTarget(value: unknown): Target | undefined {
  if (typeof value !== 'string') return undefined;
  // One char tells the usual bare `host:port` apart (no scheme starts with a digit; names rarely start with h or l).
  const c = value.charCodeAt(0);
  if (c !== 0x6c && c !== 0x68) return parseHostPort(value);
  let scheme: string;
  let protocol: TargetProtocol = TARGET_INHERIT;
  if (value.startsWith(LANE_SCHEME)) scheme = LANE_SCHEME;
  else if (value.startsWith(H2C_SCHEME)) {
    scheme = H2C_SCHEME;
    protocol = TARGET_H2C;
  } else if (value.startsWith(HTTP1_SCHEME)) {
    scheme = HTTP1_SCHEME;
    protocol = TARGET_HTTP1;
  } else return parseHostPort(value);
  const bare = parseHostPort(value.slice(scheme.length));
  if (bare === undefined) return undefined;
  return { host: bare.host, port: bare.port, address: value, lane: scheme === LANE_SCHEME, protocol };
}

function fail(path: string, problem: string): never {
  throw new RouteTableError(path, problem);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates one route; `path` prefixes error locations. Returns a frozen copy with only known fields. */
export function validateRoute(input: unknown, path = 'route'): Route {
  if (!isPlainObject(input)) fail(path, 'must be an object');
  if (!isRoutingKey(input.key)) fail(`${path}.key`, `must be ${ROUTING_KEY_RULE}`);
  if (!isDnsLabel(input.sandbox)) fail(`${path}.sandbox`, 'must be a DNS-1123 label');
  if (!isPlainObject(input.targets)) fail(`${path}.targets`, 'must be an object mapping app port to host:port');
  const targets: Record<string, string> = {};
  const ports = Object.keys(input.targets);
  if (ports.length === 0) fail(`${path}.targets`, 'must name at least one port');
  for (const port of ports) {
    if (parsePort(port) === undefined) fail(`${path}.targets.${port}`, 'key must be a port 1-65535');
    const target = input.targets[port];
    if (parseTarget(target) === undefined) fail(`${path}.targets.${port}`, 'must be host:port, h2c://host:port or http://host:port');
    targets[String(Number(port))] = target as string;
  }
  if (input.capture === undefined) return Object.freeze({ key: input.key, sandbox: input.sandbox, targets: Object.freeze(targets) });
  const capture = parseCaptureSpec(input.capture, `${path}.capture`);
  if (Array.isArray(capture)) fail(capture[0], capture[1]);
  return Object.freeze({ key: input.key, sandbox: input.sandbox, targets: Object.freeze(targets), capture });
}

/** Validates a snapshot (routes file, snapshot endpoint, push event). Throws RouteTableError naming the field. */
export function validateSnapshot(input: unknown): RouteSnapshot {
  if (!isPlainObject(input)) fail('$', 'must be an object');
  if (!isWorkloadName(input.workload)) fail('workload', 'must be <namespace>/<name> (DNS-1123 labels)');
  const revision = input.revision;
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) {
    fail('revision', 'must be a non-negative integer');
  }
  if (!Array.isArray(input.routes)) fail('routes', 'must be an array');
  if (input.routes.length > MAX_ROUTES) fail('routes', `at most ${MAX_ROUTES} routes`);
  const seen = new Set<string>();
  const routes = input.routes.map((raw, i) => {
    const route = validateRoute(raw, `routes[${i}]`);
    if (seen.has(route.key)) fail(`routes[${i}].key`, `duplicate key (${route.key})`);
    seen.add(route.key);
    return route;
  });
  return Object.freeze({ workload: input.workload, revision, routes: Object.freeze(routes) });
}

function compileRoute(route: Route): CompiledRoute {
  // map() allocates exactly-sized arrays; push() on an empty array reserves 17 slots each.
  const names = Object.keys(route.targets);
  const ports = names.map(Number);
  const targets = names.map((port) => parseTarget(route.targets[port]) as Target);
  const rule = route.capture;
  return { key: route.key, sandbox: route.sandbox, targets: new PortTargets(ports, targets), capture: rule === undefined ? undefined : compileCapture(rule), captureRule: rule };
}

/**
 * A validated route table. Snapshots build a new table, installed by one reference assignment; pushed deltas change
 * the table in place in O(1) (no copy of the map per change). Both are atomic for readers: a request looks its route
 * up synchronously, and a delta's steps (dropping a sandbox's older key, setting its new one) run in one synchronous
 * call, so no request runs between them and none sees half a change.
 */
export class RouteTable {
  readonly workload: string;
  #revision: number;
  readonly #byKey: Map<string, CompiledRoute>;
  /** sandbox → its key here: a sandbox forks a workload at most once */
  readonly #keyBySandbox: Map<string, string>;

  private constructor(workload: string, revision: number, byKey: Map<string, CompiledRoute>) {
    this.workload = workload;
    this.#revision = revision;
    this.#byKey = byKey;
    this.#keyBySandbox = new Map();
    for (const [key, route] of byKey) this.#keyBySandbox.set(route.sandbox, key);
  }

  /** Builds a table from an already validated snapshot. */
  static fromSnapshot(snapshot: RouteSnapshot): RouteTable {
    const byKey = new Map<string, CompiledRoute>();
    for (const route of snapshot.routes) byKey.set(route.key, compileRoute(route));
    return new RouteTable(snapshot.workload, snapshot.revision, byKey);
  }

  /** Validates untrusted input, then builds; throws RouteTableError. */
  static parse(input: unknown): RouteTable {
    return RouteTable.fromSnapshot(validateSnapshot(input));
  }

  static empty(workload: string): RouteTable {
    return new RouteTable(workload, 0, new Map());
  }

  /** the revision of the last snapshot or delta applied */
  get revision(): number {
    return this.#revision;
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** O(1): one Map lookup. */
  lookup(key: string): CompiledRoute | undefined {
    return this.#byKey.get(key);
  }

  /**
   * Adds or replaces `route` in place (push `upsert`); a sandbox's older route (its key changed) is dropped. Validates
   * first, so a bad event changes nothing (throws RouteTableError). O(1).
   */
  applyUpsert(event: UpsertEvent): this {
    const route = validateRoute(event.route);
    const compiled = compileRoute(route);
    const older = this.#keyBySandbox.get(route.sandbox);
    if (older !== undefined && older !== route.key) this.#byKey.delete(older);
    // The key may have belonged to another sandbox (the control plane moved it): that sandbox no longer has a route.
    const previous = this.#byKey.get(route.key);
    if (previous !== undefined && previous.sandbox !== route.sandbox) this.#keyBySandbox.delete(previous.sandbox);
    this.#byKey.set(route.key, compiled);
    this.#keyBySandbox.set(route.sandbox, route.key);
    this.#revision = event.revision;
    return this;
  }

  /** Removes `key` in place (push `delete`). O(1). */
  applyDelete(event: DeleteEvent): this {
    const route = this.#byKey.get(event.key);
    if (route !== undefined) {
      this.#byKey.delete(event.key);
      if (this.#keyBySandbox.get(route.sandbox) === event.key) this.#keyBySandbox.delete(route.sandbox);
    }
    this.#revision = event.revision;
    return this;
  }

  toSnapshot(): RouteSnapshot {
    const routes: Route[] = [];
    for (const c of this.#byKey.values()) {
      routes.push(c.captureRule === undefined ? { key: c.key, sandbox: c.sandbox, targets: c.targets.toRecord() } : { key: c.key, sandbox: c.sandbox, targets: c.targets.toRecord(), capture: c.captureRule });
    }
    return { workload: this.workload, revision: this.revision, routes };
  }
}
