// The control plane's configuration: flags, then LANEWAY_* env, validated once into a frozen object.
import { resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { isLoopbackHost } from '../core/units.js';
import { parseDurationMs, parseFlags, parseListenAddress, parsePositiveInt, type FlagSpec } from '../core/flags.js';
import { compileAllowTargets } from '../model/allow-targets.js';
import { parseHostPort } from '../model/route-table.js';
import { injectOptions, type InjectOptions } from './admission.js';

export interface ControlPlaneConfig {
  readonly listen: { readonly host: string; readonly port: number };
  /** directory holding `laneway.db` (created when missing) */
  readonly dataDir: string;
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

export const USAGE = `usage: laneway control-plane [flags]

  --listen host:port        address to serve on (default 127.0.0.1:7070; port 0 picks a free one)
  --data dir                 data directory for the SQLite store (default ./.laneway)
  --tokens-file path         'role:token' lines (roles writer, reader); enables bearer authentication
  --insecure                 allow a non-loopback --listen without --tokens-file
  --allow-targets pat,...    host globs (*.default.svc) and CIDRs (10.0.0.0/8) fork targets must match
  --policy path              plan policy (YAML/JSON) server-side plan runs must satisfy (README "Validate a change")
  --probe-interval 2s        how often fork targets are probed over TCP (0: never connect to them; phases stay Pending)
  --heartbeat-interval 10s   SSE heartbeat period (at most 15s)
  --delta-log-size 1024      deltas kept per workload for Last-Event-ID resume
  --max-watchers 10000       concurrent watch streams accepted
  --log-level info           pino level for the log on stderr (silent, error, warn, info, debug)
  --webhook-listen host:port HTTPS address of the sidecar-injection webhook (default 0.0.0.0:9443)
  --webhook-cert path        PEM certificate for the webhook (with --webhook-key; re-read every minute)
  --webhook-key path         PEM private key for the webhook
  --inject-image image       the laneway image the webhook injects (sidecar and init container)
  --inject-control-plane url the control-plane URL injected sidecars subscribe to
  --inject-pull-policy p     imagePullPolicy of injected containers (default IfNotPresent)
  --inject-token-secret name Secret (key 'token') in each injected namespace holding a reader token
  --lane-listen host:port    serve local lanes: the relay port sidecars send local forks' requests to (off by default)
  --lane-advertise host:port the address sidecars dial for local forks (default the --lane-listen address; required for 0.0.0.0)
Every flag can also be set as LANEWAY_<FLAG> (e.g. LANEWAY_LISTEN, LANEWAY_DATA).
`;

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
    dataDir: resolve(str('data', DEFAULTS.data)),
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

/** A complete config from partial overrides: what tests and embedders use instead of argv. */
export function configWith(overrides: Partial<ControlPlaneConfig> & { dataDir: string }): ControlPlaneConfig {
  const base = loadConfig([], {}) as ControlPlaneConfig;
  return Object.freeze({ ...base, listen: { host: '127.0.0.1', port: 0 }, logLevel: 'silent', ...overrides });
}
