// `laneway sidecar`: wires config, route source, forwarding, listeners and the admin server; handles SIGTERM.
import { pino } from 'pino';
import type { Registry } from 'prom-client';
import { parseSidecarConfig, type SidecarConfig } from './config.js';
import { createAdminServer } from './admin.js';
import { Forwarder, type ForwardContext, type ProxyHandler } from './forward.js';
import { HeaderRules } from './headers.js';
import { Listeners } from './listeners.js';
import { Stats } from './metrics.js';
import { RouteState } from './route-state.js';
import { Router } from './router.js';
import { RoutesFileSource } from './routes-file.js';
import { Tunneler } from './tunnel.js';
import { H2Forwarder } from './h2.js';
import { Upstreams } from './upstreams.js';
import { Reporter } from './reporter.js';
import { ActiveProbes } from './probes.js';
import { AS_CLIENT, protocolName } from './protocols.js';

export interface RunningSidecar {
  readonly config: SidecarConfig;
  readonly stats: Stats;
  readonly routes: RouteState;
  stop(): Promise<void>;
}

export async function runSidecar(argv: string[]): Promise<void> {
  const config = parseSidecarConfig(argv);
  const sidecar = await startSidecar(config);
  let stopping = false;
  // SIGTERM (Kubernetes) and SIGINT (Ctrl-C): stop accepting, drain in-flight requests, exit 0.
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    sidecar.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

export async function startSidecar(config: SidecarConfig): Promise<RunningSidecar> {
  // Logs go to stderr, as the control plane's do: stdout stays free for what a command prints.
  const log = pino({ level: config.logLevel, base: { component: 'sidecar', workload: config.workload } }, pino.destination({ dest: 2, sync: true }));
  const stats = new Stats();
  const routes = new RouteState(config.workload, stats, log);
  const upstreams = new Upstreams({
    appHost: config.appHost,
    appPorts: config.ports.map((p) => p.appPort),
    protocols: config.ports.map((p) => p.protocol),
    stats,
    onLearned: (upstream, learned) => log.info({ upstream, protocol: protocolName(learned) }, 'auto: learned the upstream protocol'),
    connectTimeoutMs: config.connectTimeoutMs,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxPools: config.maxPools,
  });
  // Capture and the doctor report to the control plane the routes come from; with a routes file there is none.
  const reporter = config.controlPlane === undefined ? null : new Reporter(config.controlPlane, config.workload, config.token, log);
  const probes = reporter === null ? null : new ActiveProbes(config.workload, reporter);
  stats.reporter = reporter?.counters ?? null;
  const accessLog = config.accessLog
    ? (h: ProxyHandler): void =>
        log.info(
          { method: h.req.method, path: h.req.url, status: h.statusCode, sandbox: h.route?.sandbox, error: h.error, fallback: h.fellBack || undefined, ms: +(performance.now() - h.startedAt).toFixed(3) },
          'request',
        )
    : null;
  const ctx: ForwardContext = {
    rules: new HeaderRules(config.routingKeyName),
    router: new Router(routes, config.routingKeyName, config.maxHops),
    upstreams,
    stats,
    log,
    fallbackToBaseline: config.fallback === 'baseline',
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    bodyTimeoutMs: config.bodyTimeoutMs,
    maxPipelined: config.maxPipelined,
    accessLog,
    forkOf: new Map(config.ports.map(({ appPort }) => [appPort, `@${config.workload}:${appPort}`])),
    workload: config.workload,
    reporter,
    probes,
    routingKeyName: config.routingKeyName,
  };
  const h2Options = {
    appHost: config.appHost,
    connectTimeoutMs: config.connectTimeoutMs,
    maxSessions: config.maxPools,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxStreams: config.h2MaxStreams,
  };
  const h2 = config.ports.map(({ appPort, protocol }) => new H2Forwarder(ctx, h2Options, appPort, protocol));
  const listeners = new Listeners(
    { ports: config.ports, idleTimeoutMs: config.idleTimeoutMs, headersTimeoutMs: config.headersTimeoutMs, maxConnections: config.maxConnections },
    new Forwarder(ctx),
    new Tunneler(ctx, {
      appHost: config.appHost,
      connectTimeoutMs: config.connectTimeoutMs,
      upstreamTimeoutMs: config.upstreamTimeoutMs,
      tunnelIdleTimeoutMs: config.tunnelIdleTimeoutMs,
    }),
    h2,
    stats,
  );
  const inFlight = (): number => stats.inFlight + h2.reduce((n, f) => n + f.inFlight, 0);
  let draining = false;
  let registry: Promise<Registry> | null = null;
  const admin = createAdminServer({
    routes,
    registry: () => (registry ??= import('./prometheus.js').then(({ createRegistry }) => createRegistry(stats))),
    draining: () => draining,
  });

  const source = config.routesFile !== undefined ? new RoutesFileSource(config.routesFile, routes) : await controlPlaneSource(config, routes, log, probes!);
  await source.start();

  const bound = await listeners.listen(config.listenHost, config.ports);
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(config.admin.port, config.admin.host, () => resolve());
  });
  const adminAddress = admin.address();
  log.info(
    {
      ports: config.ports.map((p, i) => `${config.listenHost}:${bound[i]}->${config.appHost}:${p.appPort}${p.protocol === AS_CLIENT ? '' : `/${protocolName(p.protocol)}`}`),
      admin: typeof adminAddress === 'object' && adminAddress ? `${adminAddress.address}:${adminAddress.port}` : String(adminAddress),
      maxConnections: config.maxConnections,
    },
    'sidecar listening',
  );

  return {
    config,
    stats,
    routes,
    async stop() {
      draining = true;
      log.info({ inFlight: inFlight() }, 'draining');
      const clean = await listeners.drain(config.drainTimeoutMs, inFlight);
      source.stop();
      reporter?.stop();
      await upstreams.close();
      admin.close();
      admin.closeAllConnections();
      log.info({ clean }, 'stopped');
      log.flush();
    },
  };
}

interface RouteSource {
  start(): Promise<void>;
  stop(): void;
}

async function controlPlaneSource(config: SidecarConfig, routes: RouteState, log: pino.Logger, probes: ActiveProbes): Promise<RouteSource> {
  const [{ ControlPlaneSubscription }, { Acknowledger, replicaId }] = await Promise.all([import('./subscribe.js'), import('./ack.js')]);
  const replica = replicaId();
  const acks = new Acknowledger(config.controlPlane as string, config.workload, config.token, replica, log);
  return new ControlPlaneSubscription(
    { urls: config.controlPlanes, token: config.token, workload: config.workload, cacheFile: config.routesCache, onProbe: (p) => probes.arm(p), replica, acks },
    routes,
    log,
  );
}
