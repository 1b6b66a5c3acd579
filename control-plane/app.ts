// Builds the control plane's Fastify instance (store, registry, push, probes, TTL, auth, API) without listening, so tests can inject.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { pino } from 'pino';
import { compileAllowTargets } from '../model/allow-targets.js';
import { accessHook, Tokens } from './auth.js';
import { trafficApi, trafficPageOf } from './api/traffic.js';
import type { TrafficPage, TrafficQuery } from '../model/capture.js';
import { ProbeRegistry } from './propagation.js';
import { TrafficStore } from './traffic.js';
import type { ControlPlaneConfig } from './config.js';
import { ControlPlaneError } from '../model/api-errors.js';
import { networkInterfaces } from 'node:os';
import { forbiddenTarget, type SelfAddress } from '../model/target-guard.js';
import { describeAjvError, type AjvErrorLike } from '../core/ajv.js';
import { Metrics } from './metrics.js';
import { Prober } from './probe.js';
import { Push } from './push.js';
import { Registry } from './registry.js';
import { SqliteStore } from './sqlite-store.js';
import type { SandboxStorage } from './storage.js';
import { SOLE_REPLICA, type Leadership } from './leadership.js';
import type { EtcdLeadership } from './etcd-leadership.js';
import type { SharedHealth } from './etcd-probes.js';
import type { EtcdStore } from './etcd-store.js';
import { LaneRelay, refuseSocket } from './lanes.js';
import { bearerToken } from './auth.js';
import { LANE_UPGRADE, LOCAL_TARGET } from '../model/lanes.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TargetHealthSource } from './api/sandboxes.js';
import type { TargetHealth } from './probe.js';
import { TtlSweeper } from './ttl.js';
import admissionRoutes from './api/admission.js';
import { sandboxesApi, toResource, type SandboxResource } from './api/sandboxes.js';
import type { PlanStorage, RunStatus } from '../model/plans.js';
import { systemApi } from './api/system.js';
import { workloadsApi } from './api/workloads.js';
import { ConsoleEvents } from './events.js';
import { consoleApi } from './api/console.js';
import { Sidecars } from './sidecars.js';
import { uiRoutes } from './api/ui.js';

/** The parts, for the entry point's startup line and for tests that need to step a component. */
export interface ControlPlane {
  readonly config: ControlPlaneConfig;
  readonly store: SandboxStorage;
  readonly registry: Registry;
  readonly push: Push;
  readonly prober: Prober;
  readonly ttl: TtlSweeper;
  readonly metrics: Metrics;
  readonly authenticated: boolean;
  /** the local-lane relay; null without --lane-listen */
  readonly lanes: LaneRelay | null;
  /** what sidecars dial for local forks (the relay's advertised address); null without a relay */
  readonly laneAddress: string | null;
  /** whether this replica runs the singleton jobs (always on SQLite) */
  readonly leadership: Leadership;
  /** rejects when the store's watch is lost for good (etcd compacted past this replica): the process must restart */
  readonly fatal: Promise<never>;
}

/** What an extension (a feature built on the control plane, registered by the composition root) may use. */
export interface ControlPlaneServices {
  /** plan and run storage, beside the sandboxes in the same store */
  readonly plans: PlanStorage;
  /** a sandbox as GET /v1/sandboxes/:name shows it to a writer (detailed probe reasons) */
  sandbox(name: string): SandboxResource | undefined;
  /** `--policy` */
  readonly policyFile: string | undefined;
  /** a sandbox's captured traffic, as GET /v1/sandboxes/:name/traffic answers; undefined when there is no such sandbox */
  traffic(name: string, query: TrafficQuery): TrafficPage | undefined;
  /** a run started or finished: open web consoles are told (GET /v1/events `run`) */
  runChanged(id: string, status: RunStatus): void;
}

/**
 * Registers routes of a feature that lives above the control plane (validate/'s plans API): the
 * control plane never imports it; cli/server.ts passes it in.
 */
export type ControlPlaneExtension = (app: FastifyInstance, services: ControlPlaneServices) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    controlPlane: ControlPlane;
  }
}

/**
 * Opens the store (throws StoreLockedError when another process holds it, ConfigError for a bad
 * tokens file) and wires everything. Timers start on `ready`; `close` ends watch streams first, then
 * closes the store.
 */
export async function buildApp(config: ControlPlaneConfig, extensions: readonly ControlPlaneExtension[] = []): Promise<FastifyInstance> {
  const tokens = config.tokensFile === undefined ? null : Tokens.load(config.tokensFile);
  const policy = compileAllowTargets(config.allowTargets);
  const logger = pino(
    // Tokens never reach the log: request logging is off and the header is redacted should anything log a request.
    { level: config.logLevel, redact: ['req.headers.authorization', 'headers.authorization'] },
    // Synchronous: the few lines we log (changes, expiries, shutdown) must not be lost on exit.
    pino.destination({ dest: 2, sync: true }),
  );

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    // Reject unknown fields instead of silently dropping them (a typo like `spec.fork` must be a 400),
    // and never coerce types: `"ttl": 2` is an error, not "2".
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, allowUnionTypes: true } },
    // Watch streams are long-lived; closing must not wait for them (push.close ends them first).
    forceCloseConnections: true,
    // Fastify's own closing 503 has another body shape; ours (below) keeps the error contract.
    return503OnClosing: false,
  });

  let fail: (err: Error) => void = () => {};
  const fatal = new Promise<never>((_, reject) => (fail = reject));
  fatal.catch(() => {}); // main.ts acts on it; in-process embedders may ignore it
  let store: SandboxStorage;
  let leadership: Leadership = SOLE_REPLICA;
  let etcdLeadership: EtcdLeadership | null = null;
  let shared: SharedHealth | null = null;
  let etcdStore: EtcdStore | null = null;
  if (config.etcd === undefined) {
    store = SqliteStore.open(config.dataDir);
  } else {
    // Loaded only for etcd: the embedded default never pays for the gRPC client.
    const [{ EtcdStore }, { EtcdLeadership }, { SharedHealth }] = await Promise.all([import('./etcd-store.js'), import('./etcd-leadership.js'), import('./etcd-probes.js')]);
    const etcd = await EtcdStore.open(config.etcd, (err) => {
      logger.fatal({ err: err.message }, 'the store watch is lost; this replica cannot follow changes any more and must restart');
      fail(err);
    });
    store = etcd;
    etcdStore = etcd;
    const prefix = `${config.etcd.prefix}/`;
    etcdLeadership = new EtcdLeadership(etcd.client.namespace(prefix), config.etcd.leaseTtlMs / 1000, logger as FastifyBaseLogger, () => {
      void ttl.sweep();
      void prober.round();
    });
    leadership = etcdLeadership;
    shared = new SharedHealth(etcd.client.namespace(`${prefix}probes/`));
    try {
      await shared.start();
    } catch (err) {
      etcd.close();
      throw err;
    }
  }
  app.addHook('onClose', async () => {
    registry.close();
    shared?.close();
    store.close();
  });

  // Built in dependency order; the closures below run only after everything exists (at scrape, probe
  // or change time), so the forward references to `registry` are safe.
  const metrics = new Metrics({ sandboxes: () => registry.size, watchers: () => push.watcherCount, revision: () => registry.revision });
  const push = new Push({
    deltaLogSize: config.deltaLogSize,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    maxWatchers: config.maxWatchers,
    metrics,
    ...(etcdStore === null ? {} : { storeRevision: () => etcdStore.currentRevision() }),
  });
  // Detailed probe reasons go to the log (and to writers); readers of the API see ready / not ready.
  // One process on its own SQLite file leads; on etcd the replica holding the lease does, and
  // shares what it finds so every replica reports the same phase.
  const prober = new Prober(config.probeIntervalMs, () => registry.targets(), leadership, (target, health) => {
    logger.info({ target, ready: health.ready, reason: health.reason }, 'fork target health changed');
    shared?.publish(target, health).catch((err: Error) => logger.warn({ target, err: err.message }, 'could not share a probe result'));
  });
  const targetHealth = shared === null ? (target: string) => prober.health(target) : (target: string) => (leadership.leading ? prober.health(target) : (shared.get(target) ?? prober.health(target)));
  // The web console's change stream and the sidecars' acknowledgements (what its workloads page shows).
  const events = new ConsoleEvents(config.heartbeatIntervalMs);
  const sidecars = new Sidecars((event) => events.sidecar(event));
  let registry: Registry;
  let lanes: LaneRelay | null = null;
  let laneAddress: string | null = null;
  try {
    if (config.laneListen !== undefined) {
      // Before the registry: the relay's address is what local forks are published as.
      // Exposures obey the fork targets' rules: --allow-targets, and never metadata, link-local or ourselves.
      const exposePolicy = (host: string, port: number): string | null => {
        const allowed = policy === null ? null : policy(host);
        const forbidden = forbiddenTarget(host, port, selfAddresses(app, config));
        if (forbidden !== null && allowed !== true) return `${host} is ${forbidden}`;
        if (allowed === false) return `${host} matches no --allow-targets pattern`;
        return null;
      };
      lanes = new LaneRelay({ byKey: (key) => registry.byKey(key), get: (name) => registry.get(name) }, app.log, exposePolicy);
      const bound = await lanes.listen(config.laneListen.host, config.laneListen.port);
      laneAddress = config.laneAdvertise ?? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
    }
    registry = await Registry.open(store, {
      restored: (workloads, routes, revision) => push.routes.restore(workloads, routes, revision),
      published: (revision, deltas) => {
        push.publish(revision, deltas);
        events.changed(revision, deltas);
      },
      changed: (cause, startedAt) => metrics.changed(cause, startedAt),
      targetsAdded: (targets) => prober.kick(targets),
    }, laneAddress ?? undefined);
  } catch (err) {
    lanes?.close();
    store.close(); // an unreadable store must not stay locked by a process that failed to start
    throw err;
  }
  const health: TargetHealthSource = {
    health: (target, record): TargetHealth => (target === LOCAL_TARGET ? (lanes?.health(record) ?? NO_RELAY_HEALTH) : targetHealth(target)),
  };
  const ttl = new TtlSweeper(registry, config.sweepIntervalMs, app.log, leadership);
  const traffic = new TrafficStore();
  if (tokens !== null && tokens.weak > 0) {
    app.log.warn({ tokens: tokens.weak }, `tokens shorter than ${Tokens.RECOMMENDED_LENGTH} characters are easy to guess`);
  }

  app.decorate('controlPlane', {
    config,
    store,
    registry,
    push,
    prober,
    ttl,
    metrics,
    authenticated: tokens !== null,
    lanes,
    laneAddress,
    leadership,
    fatal,
  } satisfies ControlPlane);

  app.addHook('onReady', async () => {
    await ttl.start(); // first sweep now: sandboxes that expired while we were down go before we serve
    push.start();
    prober.start();
    etcdLeadership?.start();
  });
  let closing = false;
  app.addHook('onRequest', async () => {
    if (closing) throw new ControlPlaneError('LANEWAY_ERR_SHUTTING_DOWN');
  });
  app.addHook('preClose', async () => {
    closing = true;
    ttl.stop();
    prober.stop();
    // Resign first: another replica takes the singleton jobs over now, not after the lease runs out.
    await etcdLeadership?.close();
    push.close();
    events.close();
    traffic.close();
    lanes?.close();
  });

  if (tokens !== null) app.addHook('onRequest', accessHook(tokens));
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const error = toControlPlaneError(err);
    if (error.status >= 500) request.log.error({ err }, 'request failed');
    reply.code(error.status).type('application/json; charset=utf-8').send(error.toBody());
  });
  app.setNotFoundHandler((request) => {
    throw new ControlPlaneError('LANEWAY_ERR_ROUTE_NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0]}`);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Laneway control plane',
        version: '1',
        description: 'Sandboxes in, per-workload route tables out (snapshot and Server-Sent Events push).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      ...(tokens !== null ? { security: [{ bearer: [] }] } : {}),
    },
  });
  await app.register(sandboxesApi, {
    registry,
    prober: health,
    policy,
    self: () => selfAddresses(app, config),
    releaseLane: lanes === null ? undefined : (name) => lanes.release(name),
    lanes: lanes !== null,
  });
  // A laptop's tunnel: an HTTP/1.1 Upgrade on the API listener, authenticated like a write.
  const relay = lanes;
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const match = /^\/v1\/sandboxes\/([a-z0-9-]{1,63})\/lane(?:\?.*)?$/.exec(req.url ?? '');
    if (match === null || String(req.headers.upgrade).toLowerCase() !== LANE_UPGRADE) {
      return refuseSocket(socket, 'LANEWAY_ERR_ROUTE_NOT_FOUND', `no upgrade endpoint ${req.method} ${(req.url ?? '').split('?')[0]}`);
    }
    if (closing) return refuseSocket(socket, 'LANEWAY_ERR_SHUTTING_DOWN');
    if (relay === null) return refuseSocket(socket, 'LANEWAY_ERR_LANES_OFF');
    if (tokens !== null) {
      const token = bearerToken(req.headers.authorization);
      const role = token === null ? null : tokens.roleOf(token);
      if (role === null) return refuseSocket(socket, 'LANEWAY_ERR_UNAUTHENTICATED', undefined, 'www-authenticate: Bearer realm="laneway"\r\n');
      if (role !== 'writer') return refuseSocket(socket, 'LANEWAY_ERR_FORBIDDEN', 'connecting a local lane needs a writer token');
    }
    relay.attach(match[1]!, req, socket, head);
  });
  await app.register(workloadsApi, { push, sidecars });
  await app.register(consoleApi, { events });
  await app.register(uiRoutes);
  await app.register(trafficApi, { traffic, probes: new ProbeRegistry(), push, sandbox: (name) => registry.get(name) });
  await app.register(systemApi, { registry, push, metrics, leadership, store: config.etcd === undefined ? 'sqlite' : 'etcd' });
  const services: ControlPlaneServices = {
    plans: store.plans,
    sandbox: (name) => {
      const record = registry.get(name);
      return record === undefined ? undefined : toResource(record, health);
    },
    policyFile: config.policyFile,
    traffic: (name, query) => {
      const record = registry.get(name);
      return record === undefined ? undefined : trafficPageOf(traffic, record, query);
    },
    runChanged: (id, status) => events.run({ id, status }),
  };
  for (const extension of extensions) await extension(app, services);
  // Plain HTTP on the API listener (loopback, tests); clusters use the TLS listener from main.ts.
  if (config.inject !== undefined) await app.register(admissionRoutes, { inject: config.inject });
  return app;
}

const NO_RELAY_HEALTH: TargetHealth = Object.freeze({ ready: false, reason: 'this control plane has no lane relay (--lane-listen)', checkedAt: null });

/**
 * Every address the control plane answers on: its API listener (the bound port, which differs from
 * `--listen` for port 0) and its webhook listener, a wildcard host expanded to the machine's interfaces.
 */
function selfAddresses(app: FastifyInstance, config: ControlPlaneConfig): SelfAddress[] {
  const listeners: { host: string; port: number }[] = [config.listen];
  const bound = app.server.address();
  if (bound !== null && typeof bound === 'object') listeners.push({ host: bound.address, port: bound.port });
  if (config.webhook !== undefined) listeners.push(config.webhook.listen);
  const out: SelfAddress[] = [];
  for (const { host, port } of listeners) {
    if (port === 0) continue;
    if (host === '0.0.0.0' || host === '::') {
      for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.push({ host: i.address, port });
    }
    out.push({ host, port });
  }
  return out;
}

/** Maps anything thrown while serving a request to a ControlPlaneError (the `{"error":{code,message,field}}` body). */
export function toControlPlaneError(err: FastifyError | Error): ControlPlaneError {
  if (err instanceof ControlPlaneError) return err;
  const fe = err as FastifyError;
  if (fe.validation !== undefined && fe.validation.length > 0) {
    const first = fe.validation[0] as AjvErrorLike;
    return validationError(fe.validationContext ?? 'body', first);
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ControlPlaneError('LANEWAY_ERR_BODY_TOO_LARGE');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ControlPlaneError('LANEWAY_ERR_UNSUPPORTED_MEDIA_TYPE');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ControlPlaneError('LANEWAY_ERR_INVALID_BODY', fe.message);
    default:
      break;
  }
  if (err instanceof SyntaxError && fe.statusCode === 400) return new ControlPlaneError('LANEWAY_ERR_INVALID_BODY', err.message);
  const status = fe.statusCode ?? 500;
  if (status === 413) return new ControlPlaneError('LANEWAY_ERR_BODY_TOO_LARGE');
  if (status === 415) return new ControlPlaneError('LANEWAY_ERR_UNSUPPORTED_MEDIA_TYPE');
  if (status >= 400 && status < 500) return new ControlPlaneError('LANEWAY_ERR_INVALID_BODY', fe.message);
  // Anything else is our fault; the message could leak internals (paths, SQL), so the client gets the code only.
  return new ControlPlaneError('LANEWAY_ERR_INTERNAL');
}

/** The sandbox spec's only array field: digit-only segments elsewhere are object keys (ports under `targets`). */
const SPEC_ARRAYS: ReadonlySet<string> = new Set(['forks']);

/** Turns an Ajv error into a 400 naming the field the way clients write it: `spec.forks[0].targets.8080`. */
function validationError(context: string, e: AjvErrorLike): ControlPlaneError {
  const described = describeAjvError(e, '', SPEC_ARRAYS);
  const field = described.path === '(document)' ? context : described.path;
  return new ControlPlaneError('LANEWAY_ERR_INVALID_FIELD', `${field}: ${described.problem}`, field);
}
