// Sidecar configuration: flags, then LANEWAY_* environment, validated once into a frozen object.
import { DEFAULT_ROUTING_KEY_NAME } from '../core/constants.js';
import { ConfigError } from '../core/errors.js';
import { isBaggageKeyName, isWorkloadName } from '../core/names.js';
import { readFileSync } from 'node:fs';
import { parsePort } from '../core/units.js';
import { AS_CLIENT, PROTOCOL_NAMES, type UpstreamProtocol } from './protocols.js';
import { parseDurationMs, parseFlags, parseListenAddress, parsePositiveInt, type FlagSpec } from '../core/flags.js';

export interface PortMapping {
  readonly listenPort: number;
  readonly appPort: number;
  /** what the app on this port speaks (`/http1`, `/h2c`, `/auto`); AS_CLIENT without a suffix */
  readonly protocol: UpstreamProtocol;
}

export interface SidecarConfig {
  readonly workload: string;
  readonly ports: readonly PortMapping[];
  readonly appHost: string;
  readonly listenHost: string;
  readonly routesFile: string | undefined;
  /** the first of `controlPlanes`: where reports go */
  readonly controlPlane: string | undefined;
  /** `--control-plane url,url,…`: replicas the route watch fails over between (empty with --routes-file) */
  readonly controlPlanes: readonly string[];
  readonly token: string | undefined;
  readonly routesCache: string | undefined;
  readonly admin: { readonly host: string; readonly port: number };
  readonly routingKeyName: string;
  readonly fallback: 'none' | 'baseline';
  readonly connectTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly tunnelIdleTimeoutMs: number;
  readonly drainTimeoutMs: number;
  /** client connections accepted at once across the data listeners; beyond it new ones are closed and counted */
  readonly maxConnections: number;
  /** requests one HTTP/1 connection may have in flight before the sidecar stops reading it */
  readonly maxPipelined: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to HTTP/2 clients */
  readonly h2MaxStreams: number;
  readonly maxHops: number;
  readonly maxPools: number;
  readonly logLevel: string;
  readonly accessLog: boolean;
}

export const SIDECAR_FLAGS: Readonly<Record<string, FlagSpec>> = Object.freeze({
  workload: { type: 'string' },
  port: { type: 'string', multiple: true, env: 'LANEWAY_PORTS' },
  'app-host': { type: 'string' },
  'listen-host': { type: 'string' },
  'routes-file': { type: 'string' },
  'control-plane': { type: 'string' },
  token: { type: 'string' },
  'routes-cache': { type: 'string' },
  admin: { type: 'string' },
  'routing-key-name': { type: 'string' },
  fallback: { type: 'string' },
  'connect-timeout': { type: 'string' },
  'upstream-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'headers-timeout': { type: 'string' },
  'body-timeout': { type: 'string' },
  'tunnel-idle-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-pipelined': { type: 'string' },
  'h2-max-streams': { type: 'string' },
  'max-hops': { type: 'string' },
  'max-pools': { type: 'string' },
  'log-level': { type: 'string' },
  'access-log': { type: 'boolean' },
});

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function str(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** File descriptors kept back from the connection cap: listeners, the admin server, logs, the control-plane stream. */
export const RESERVED_FDS = 64;
/** The automatic connection cap never exceeds this, however high the fd limit. */
export const MAX_CONNECTIONS_CEILING = 10_000;
/** Used when the fd limit cannot be read (not Linux). */
export const MAX_CONNECTIONS_FALLBACK = 1000;

/** The soft `RLIMIT_NOFILE` of this process, from /proc; undefined where unknown or unlimited. */
export function readFdLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    const soft = Number(line?.[1]);
    return Number.isInteger(soft) && soft > 0 ? soft : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Each proxied connection may hold two descriptors (client and upstream), and some are needed for
 * everything else: so a cap that keeps the process below its fd limit, and the admin server reachable.
 */
export function defaultMaxConnections(fdLimit: number | undefined): number {
  if (fdLimit === undefined) return MAX_CONNECTIONS_FALLBACK;
  return Math.max(1, Math.min(MAX_CONNECTIONS_CEILING, Math.floor((fdLimit - RESERVED_FDS) / 2)));
}

export function parseSidecarConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, fdLimit: number | undefined = readFdLimit()): SidecarConfig {
  const { values } = parseFlags(argv, SIDECAR_FLAGS, env);

  const workload = str(values, 'workload');
  if (workload === undefined) throw new ConfigError('--workload', 'required (<namespace>/<name>)');
  if (!isWorkloadName(workload)) throw new ConfigError('--workload', `expected <namespace>/<name> of DNS-1123 labels, got '${workload}'`);

  const rawPorts = (values.port as string[] | undefined) ?? [];
  if (rawPorts.length === 0) throw new ConfigError('--port', 'at least one <listenPort>:<appPort> is required');
  const ports = rawPorts.map((spec) => {
    const slash = spec.indexOf('/');
    let protocol: UpstreamProtocol = AS_CLIENT;
    if (slash !== -1) {
      const name = spec.slice(slash + 1);
      const known = Object.hasOwn(PROTOCOL_NAMES, name) ? PROTOCOL_NAMES[name] : undefined;
      if (known === undefined) throw new ConfigError('--port', `protocol after '/' must be one of ${Object.keys(PROTOCOL_NAMES).join(', ')}, got '${spec}'`);
      protocol = known;
    }
    const [l, a, extra] = (slash === -1 ? spec : spec.slice(0, slash)).split(':');
    // Listen port 0 picks a free port (tests, local meshes); the real one is in the startup log line.
    const listenPort = l === '0' ? 0 : l === undefined ? undefined : parsePort(l);
    const appPort = a === undefined ? undefined : parsePort(a);
    if (listenPort === undefined || appPort === undefined || extra !== undefined) {
      throw new ConfigError('--port', `expected <listenPort>:<appPort>[/http1|/h2c|/auto], got '${spec}'`);
    }
    return Object.freeze({ listenPort, appPort, protocol });
  });
  const seenListen = new Set<number>();
  const seenApp = new Set<number>();
  for (const { listenPort, appPort } of ports) {
    if (listenPort !== 0 && seenListen.has(listenPort)) throw new ConfigError('--port', `listen port ${listenPort} given twice`);
    if (seenApp.has(appPort)) throw new ConfigError('--port', `app port ${appPort} given twice`);
    seenListen.add(listenPort);
    seenApp.add(appPort);
  }

  const routesFile = str(values, 'routes-file');
  const controlPlane = str(values, 'control-plane');
  if (routesFile !== undefined && controlPlane !== undefined) {
    throw new ConfigError('--routes-file', 'give either --routes-file or --control-plane, not both');
  }
  if (routesFile === undefined && controlPlane === undefined) {
    throw new ConfigError('--routes-file', 'one of --routes-file or --control-plane is required');
  }
  const controlPlanes = controlPlane === undefined ? [] : controlPlane.split(',').map((u) => u.trim());
  for (const text of controlPlanes) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ConfigError('--control-plane', `not a URL: '${text}'`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('--control-plane', 'must be an http:// or https:// URL');
  }

  const routingKeyName = str(values, 'routing-key-name') ?? DEFAULT_ROUTING_KEY_NAME;
  if (!isBaggageKeyName(routingKeyName)) {
    throw new ConfigError('--routing-key-name', `must be 1-64 token characters, got '${routingKeyName}'`);
  }

  const fallback = str(values, 'fallback') ?? 'none';
  if (fallback !== 'none' && fallback !== 'baseline') throw new ConfigError('--fallback', `expected none or baseline, got '${fallback}'`);

  const logLevel = str(values, 'log-level') ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError('--log-level', `expected one of ${[...LOG_LEVELS].join(', ')}`);

  const duration = (flag: string, fallbackValue: string): number => {
    const ms = parseDurationMs(`--${flag}`, str(values, flag) ?? fallbackValue);
    if (ms <= 0) throw new ConfigError(`--${flag}`, 'must be greater than zero');
    return ms;
  };

  return Object.freeze({
    workload,
    ports: Object.freeze(ports),
    appHost: str(values, 'app-host') ?? '127.0.0.1',
    listenHost: str(values, 'listen-host') ?? '127.0.0.1',
    routesFile,
    controlPlane: controlPlanes[0],
    controlPlanes: Object.freeze(controlPlanes),
    token: str(values, 'token'),
    routesCache: str(values, 'routes-cache'),
    admin: Object.freeze(parseListenAddress('--admin', str(values, 'admin') ?? '127.0.0.1:15000')),
    routingKeyName,
    fallback,
    connectTimeoutMs: duration('connect-timeout', '3s'),
    upstreamTimeoutMs: duration('upstream-timeout', '60s'),
    idleTimeoutMs: duration('idle-timeout', '60s'),
    headersTimeoutMs: duration('headers-timeout', '10s'),
    bodyTimeoutMs: duration('body-timeout', '30s'),
    tunnelIdleTimeoutMs: duration('tunnel-idle-timeout', '10m'),
    drainTimeoutMs: duration('drain-timeout', '15s'),
    maxConnections: parsePositiveInt('--max-connections', str(values, 'max-connections') ?? String(defaultMaxConnections(fdLimit)), 1_000_000),
    maxPipelined: parsePositiveInt('--max-pipelined', str(values, 'max-pipelined') ?? '16', 1024),
    h2MaxStreams: parsePositiveInt('--h2-max-streams', str(values, 'h2-max-streams') ?? '100', 10_000),
    maxHops: parsePositiveInt('--max-hops', str(values, 'max-hops') ?? '8', 64),
    maxPools: parsePositiveInt('--max-pools', str(values, 'max-pools') ?? '1000', 100_000),
    logLevel,
    accessLog: values['access-log'] === true,
  });
}
