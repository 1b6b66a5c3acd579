// The control plane's configuration: flags, then LANEWAY_* env, validated once into a frozen object.
import { resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { isLoopbackHost } from '../core/units.js';
import { parseDurationMs, parseFlags, parseListenAddress, parsePositiveInt, type FlagSpec } from '../core/flags.js';
import { compileAllowTargets } from '../model/allow-targets.js';
import { parseHostPort } from '../model/route-table.js';
import { injectOptions, type InjectOptions } from './admission.js';

/** What `--store etcd://…` and the `--etcd-*` flags parse to. */
export interface EtcdConfig {
  /** `host:port` of each member the client may talk to */
  readonly endpoints: readonly string[];
  /** every key lives under `<prefix>/` (several control planes can share one etcd) */
  readonly prefix: string;
  /** a unary call (commit, renew, load) that etcd has not answered by then fails with 503 LANEWAY_ERR_STORE_UNAVAILABLE */
  readonly requestTimeoutMs: number;
  /** the leader lease: the singleton jobs move to another replica within this long of the leader's death */
  readonly leaseTtlMs: number;
  /** PEM files for TLS to etcd; undefined = plaintext */
  readonly caFile: string | undefined;
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  /** etcd's own authentication (`user:password`); undefined = none */
  readonly user: string | undefined;
}

export const ETCD_DEFAULTS = Object.freeze({
  prefix: 'laneway',
  // Under an etcd election timeout (1 s) plus a leader change, a healthy cluster answers well inside this.
  requestTimeoutMs: 5_000,
  // Kubernetes' own leader election uses 15 s; a shorter lease means faster TTL takeover and more keep-alive traffic.
  leaseTtlMs: 10_000,
  // A load of 10,000 sandboxes is ~6 MB in one range response; gRPC's default cap is 4 MiB.
  maxReceiveBytes: 256 * 1024 * 1024,
});

export interface ControlPlaneConfig {
  readonly listen: { readonly host: string; readonly port: number };
  /** directory holding `laneway.db` (created when missing); unused with `etcd` */
  readonly dataDir: string;
  /** the shared store of several replicas; undefined = the SQLite file in `dataDir` */
  readonly etcd: EtcdConfig | undefined;
  /** `role:token` lines; undefined = no authentication (then loopback only unless `insecure`) */
  readonly tokensFile: string | undefined;
  readonly insecure: boolean;
  /** host globs and CIDRs fork targets must match; empty = any target */
  readonly allowTargets: readonly string[];
  /** plan policy file (validate/policy.ts) every server-side plan run is checked against; undefined = none */
  readonly policyFile: string | undefined;
  readonly probeIntervalMs: number;
  /** SSE heartbeat comment period; the contract is "at least every 15 s" */
  readonly heartbeatIntervalMs: number;
  /** how often expired sandboxes are looked for */
  readonly sweepIntervalMs: number;
  /** deltas kept per workload for `Last-Event-ID` resume; older resumes get a fresh snapshot */
  readonly deltaLogSize: number;
  readonly maxWatchers: number;
  readonly bodyLimitBytes: number;
  readonly logLevel: string;
  /** the TLS sidecar-injection webhook listener; undefined = not served over TLS */
  readonly webhook: { readonly listen: { readonly host: string; readonly port: number }; readonly certFile: string; readonly keyFile: string } | undefined;
  /** what the injection webhook injects; undefined = the admission routes are not served */
  readonly inject: InjectOptions | undefined;
  /** the lane relay's sidecar-facing listener (local forks); undefined = no relay, local forks refused */
  readonly laneListen: { readonly host: string; readonly port: number } | undefined;
  /** the `host:port` sidecars dial for local forks; undefined = the relay's bound address */
  readonly laneAdvertise: string | undefined;
}

export const FLAGS = Object.freeze({
  listen: { type: 'string' },
  data: { type: 'string' },
  store: { type: 'string' },
  'etcd-cacert': { type: 'string' },
  'etcd-cert': { type: 'string' },
  'etcd-key': { type: 'string' },
  'etcd-user': { type: 'string' },
  'etcd-request-timeout': { type: 'string' },
  'leader-lease': { type: 'string' },
  'tokens-file': { type: 'string' },
  insecure: { type: 'boolean' },
  'allow-targets': { type: 'string', multiple: true },
  policy: { type: 'string' },
  'probe-interval': { type: 'string' },
  'heartbeat-interval': { type: 'string' },
  'delta-log-size': { type: 'string' },
  'max-watchers': { type: 'string' },
  'log-level': { type: 'string' },
  'webhook-listen': { type: 'string' },
  'webhook-cert': { type: 'string' },
  'webhook-key': { type: 'string' },
  'inject-image': { type: 'string' },
  'inject-control-plane': { type: 'string' },
  'inject-pull-policy': { type: 'string' },
  'inject-token-secret': { type: 'string' },
  'lane-listen': { type: 'string' },
  'lane-advertise': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Record<string, FlagSpec>);

export const DEFAULTS = Object.freeze({
  listen: '127.0.0.1:7070',
  data: './.laneway',
  probeInterval: '2s',
  heartbeatInterval: '10s',
  sweepIntervalMs: 1000,
  deltaLogSize: 1024,
  maxWatchers: 10_000,
  // A sandbox spec is a few hundred bytes; 64 KiB leaves room for 64 forks with long names.
  bodyLimitBytes: 64 * 1024,
});

const LOG_LEVELS = new Set(['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace']);
const MAX_HEARTBEAT_MS = 15_000;

/** Parses argv and env; throws ConfigError naming the flag. Returns undefined for --help. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ControlPlaneConfig | undefined {
  const { values } = parseFlags(argv, FLAGS, env);
  if (values.help === true) return undefined;
  const str = (name: string, fallback: string): string => (typeof values[name] === 'string' ? (values[name] as string) : fallback);

  const listen = parseListenAddress('--listen', str('listen', DEFAULTS.listen));
  const store = parseStore(values as Record<string, unknown>);
  const tokensFile = typeof values['tokens-file'] === 'string' ? resolve(values['tokens-file']) : undefined;
  const insecure = values.insecure === true;
  // Without tokens anyone who can reach the port can point traffic anywhere: only loopback is safe.
  if (tokensFile === undefined && !insecure && !isLoopbackHost(listen.host)) {
    throw new ConfigError('--listen', `${listen.host} is not a loopback address; use --tokens-file (or --insecure to accept an unauthenticated API)`);
  }

  const allowTargets = ((values['allow-targets'] as string[] | undefined) ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  compileAllowTargets(allowTargets); // throws ConfigError on a bad pattern, at startup rather than per request

  const probeIntervalMs = parseDurationMs('--probe-interval', str('probe-interval', DEFAULTS.probeInterval));
  if (probeIntervalMs !== 0 && probeIntervalMs < 100) throw new ConfigError('--probe-interval', 'must be 0 (off) or at least 100ms');
  const heartbeatIntervalMs = parseDurationMs('--heartbeat-interval', str('heartbeat-interval', DEFAULTS.heartbeatInterval));
  if (heartbeatIntervalMs < 10 || heartbeatIntervalMs > MAX_HEARTBEAT_MS) {
    throw new ConfigError('--heartbeat-interval', 'must be between 10ms and 15s');
  }
  const logLevel = str('log-level', 'info');
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError('--log-level', `expected one of ${[...LOG_LEVELS].join(', ')}`);

  const opt = (name: string): string | undefined => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const webhookCert = opt('webhook-cert');
  const webhookKey = opt('webhook-key');
  if ((webhookCert === undefined) !== (webhookKey === undefined)) {
    throw new ConfigError(webhookCert === undefined ? '--webhook-cert' : '--webhook-key', 'give both --webhook-cert and --webhook-key');
  }
  const injectGiven = ['inject-image', 'inject-control-plane', 'inject-pull-policy', 'inject-token-secret'].some((f) => opt(f) !== undefined);
  if (webhookCert !== undefined && !injectGiven) throw new ConfigError('--inject-image', 'required with --webhook-cert: the image the webhook injects');
  const inject = injectGiven
    ? injectOptions({ image: opt('inject-image'), controlPlaneUrl: opt('inject-control-plane'), imagePullPolicy: opt('inject-pull-policy'), tokenSecret: opt('inject-token-secret') })
    : undefined;
  const webhook =
    webhookCert === undefined
      ? undefined
      : Object.freeze({
          listen: Object.freeze(parseListenAddress('--webhook-listen', opt('webhook-listen') ?? '0.0.0.0:9443')),
          certFile: resolve(webhookCert),
          keyFile: resolve(webhookKey as string),
        });

  const laneListenText = opt('lane-listen');
  const laneListen = laneListenText === undefined ? undefined : parseListenAddress('--lane-listen', laneListenText);
  if (laneListen !== undefined && tokensFile === undefined && !insecure && !isLoopbackHost(laneListen.host)) {
    throw new ConfigError('--lane-listen', `${laneListen.host} is not a loopback address; use --tokens-file (or --insecure)`);
  }
  const laneAdvertise = opt('lane-advertise');
  if (laneAdvertise !== undefined && parseHostPort(laneAdvertise) === undefined) throw new ConfigError('--lane-advertise', `expected host:port, got '${laneAdvertise}'`);
  if (laneAdvertise !== undefined && laneListen === undefined) throw new ConfigError('--lane-advertise', 'needs --lane-listen');
  if (laneListen !== undefined && laneAdvertise === undefined && (laneListen.host === '0.0.0.0' || laneListen.host === '::')) {
    throw new ConfigError('--lane-advertise', `required with a wildcard --lane-listen: sidecars cannot dial ${laneListen.host}`);
  }

  return Object.freeze({
    listen: Object.freeze(listen),
    dataDir: resolve(store.dataDir ?? str('data', DEFAULTS.data)),
    etcd: store.etcd,
    tokensFile,
    insecure,
    allowTargets: Object.freeze(allowTargets),
    policyFile: typeof values.policy === 'string' ? resolve(values.policy) : undefined,
    probeIntervalMs,
    heartbeatIntervalMs,
    sweepIntervalMs: DEFAULTS.sweepIntervalMs,
    deltaLogSize: values['delta-log-size'] === undefined ? DEFAULTS.deltaLogSize : parsePositiveInt('--delta-log-size', String(values['delta-log-size']), 1_000_000),
    maxWatchers: values['max-watchers'] === undefined ? DEFAULTS.maxWatchers : parsePositiveInt('--max-watchers', String(values['max-watchers']), 1_000_000),
    bodyLimitBytes: DEFAULTS.bodyLimitBytes,
    logLevel,
    webhook,
    inject,
    laneListen: laneListen === undefined ? undefined : Object.freeze(laneListen),
    laneAdvertise,
  });
}

const ETCD_FLAGS = ['etcd-cacert', 'etcd-cert', 'etcd-key', 'etcd-user', 'etcd-request-timeout', 'leader-lease'] as const;
/** a member address: `host:port` or `[v6]:port`, nothing else (no scheme, no path) */
const ENDPOINT = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):\d{1,5}$/;
const PREFIX = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** `--store sqlite:<dir>` or `etcd://h1:2379,h2:2379[/prefix]`, and the etcd flags that only go with the latter. */
function parseStore(values: Record<string, unknown>): { dataDir: string | undefined; etcd: EtcdConfig | undefined } {
  const opt = (name: string): string | undefined => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const text = opt('store');
  if (text === undefined || text.startsWith('sqlite:')) {
    const given = ETCD_FLAGS.find((f) => opt(f) !== undefined);
    if (given !== undefined) throw new ConfigError(`--${given}`, 'only applies with --store etcd://…');
    if (text === undefined) return { dataDir: undefined, etcd: undefined };
    if (opt('data') !== undefined) throw new ConfigError('--store', 'give either --store or --data, not both');
    const dir = text.slice('sqlite:'.length);
    if (dir === '') throw new ConfigError('--store', 'expected sqlite:<dir>');
    return { dataDir: dir, etcd: undefined };
  }
  if (!text.startsWith('etcd://')) throw new ConfigError('--store', `expected sqlite:<dir> or etcd://host:port,..., got '${text}'`);
  const rest = text.slice('etcd://'.length);
  const slash = rest.indexOf('/');
  const hosts = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? ETCD_DEFAULTS.prefix : rest.slice(slash + 1);
  const endpoints = hosts.split(',').map((h) => h.trim());
  for (const e of endpoints) if (!ENDPOINT.test(e)) throw new ConfigError('--store', `'${e}' is not host:port`);
  if (!PREFIX.test(prefix)) throw new ConfigError('--store', `key prefix '${prefix}' must be 1-63 of [A-Za-z0-9_.-]`);
  if (opt('data') !== undefined) throw new ConfigError('--store', 'give either --store or --data, not both');
  const requestTimeoutMs = parseDurationMs('--etcd-request-timeout', opt('etcd-request-timeout') ?? `${ETCD_DEFAULTS.requestTimeoutMs}ms`);
  if (requestTimeoutMs < 100) throw new ConfigError('--etcd-request-timeout', 'must be at least 100ms');
  const leaseTtlMs = parseDurationMs('--leader-lease', opt('leader-lease') ?? `${ETCD_DEFAULTS.leaseTtlMs}ms`);
  // etcd grants leases in whole seconds, and refuses very short ones.
  if (leaseTtlMs < 2000 || leaseTtlMs % 1000 !== 0) throw new ConfigError('--leader-lease', 'must be whole seconds, at least 2s');
  const certFile = opt('etcd-cert');
  const keyFile = opt('etcd-key');
  if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError(certFile === undefined ? '--etcd-cert' : '--etcd-key', 'give both --etcd-cert and --etcd-key');
  const caFile = opt('etcd-cacert');
  if (certFile !== undefined && caFile === undefined) throw new ConfigError('--etcd-cacert', 'required with --etcd-cert (TLS to etcd)');
  const user = opt('etcd-user');
  if (user !== undefined && !/^[^:]+:.+$/.test(user)) throw new ConfigError('--etcd-user', 'expected user:password');
  return {
    dataDir: undefined,
    etcd: Object.freeze({
      endpoints: Object.freeze(endpoints),
      prefix,
      requestTimeoutMs,
      leaseTtlMs,
      caFile: caFile === undefined ? undefined : resolve(caFile),
      certFile: certFile === undefined ? undefined : resolve(certFile),
      keyFile: keyFile === undefined ? undefined : resolve(keyFile),
      user,
    }),
  };
}

/** A complete config from partial overrides: what tests and embedders use instead of argv. */
export function configWith(overrides: Partial<ControlPlaneConfig> & { dataDir: string }): ControlPlaneConfig {
  const base = loadConfig([], {}) as ControlPlaneConfig;
  return Object.freeze({ ...base, listen: { host: '127.0.0.1', port: 0 }, logLevel: 'silent', ...overrides });
}
