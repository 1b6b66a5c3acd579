// The local mini-mesh as real child processes (control plane, a chain of services each behind a sidecar, forks), shared by `laneway demo` and the e2e tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';
import type { Reply } from './service.js';
import { waitFor } from '../core/poll.js';
import { freePort, ManagedProcess, ProcessFailedError } from '../core/process.js';

/**
 * `dist/`, whether this module runs compiled (dist/demo/mesh.js, from `laneway demo`) or as source
 * (demo/mesh.ts, from vitest): the children always run the compiled entry points.
 */
const HERE = dirname(fileURLToPath(import.meta.url));
export const DIST = basename(dirname(HERE)) === 'dist' ? dirname(HERE) : join(HERE, '..', 'dist');
const CLI = join(DIST, 'cli', 'main.js');
const SERVICE = join(DIST, 'demo', 'service.js');
/** `--import` wants a URL (a bare absolute path is not one on Windows) */
const PARENT_GUARD = pathToFileURL(join(DIST, 'demo', 'parent-guard.js')).href;

export const NAMESPACE = 'default';
/** The baggage member the sidecars read by default (`--routing-key-name`). */
export const BAGGAGE_KEY = 'laneway';
// ---------------------------------------------------------------------------------------------------
// Child processes (core/process.ts does the work; a Child adds the demo's environment and parent guard)

/** Children inherit our environment minus LANEWAY_*: a stray LANEWAY_ROUTES_FILE must not change a demo sidecar. */
function childEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LANEWAY_')) env[k] = v;
  return { ...env, ...extra };
}

export type OutputSink = (label: string, text: string) => void;

/** One child process of the mesh: a Node entry point started with the parent guard. */
export class Child {
  readonly label: string;
  readonly #proc: ManagedProcess;

  private constructor(label: string, args: string[], env: NodeJS.ProcessEnv, sink: OutputSink | undefined, group: Set<Child> | undefined) {
    this.label = label;
    // parent-guard: the child stops itself if we die without stopping it (SIGKILL).
    const child = spawn(process.execPath, ['--import', PARENT_GUARD, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = new ManagedProcess(label, child, sink === undefined ? undefined : (text) => sink(label, text));
    group?.add(this);
  }

  /** Starts `node <args>`; resolves with the first match of `ready` in its output. */
  static async start(
    label: string,
    args: string[],
    ready: RegExp,
    /** `group` gets the child as soon as it is spawned, so whoever owns the group can stop it even mid-start */
    opts: { env?: NodeJS.ProcessEnv; sink?: OutputSink; group?: Set<Child> } = {},
  ): Promise<{ child: Child; match: RegExpExecArray }> {
    const child = new Child(label, args, opts.env ?? {}, opts.sink, opts.group);
    try {
      return { child, match: await child.#proc.waitReady(ready) };
    } catch (err) {
      await child.stop();
      throw err;
    }
  }

  get process(): ChildProcess {
    return this.#proc.process;
  }

  get exited(): Promise<unknown> {
    return this.#proc.exited;
  }

  get pid(): number | undefined {
    return this.#proc.pid;
  }

  get alive(): boolean {
    return this.#proc.alive;
  }

  output(): string {
    return this.#proc.output();
  }

  /** SIGTERM (or `signal`), then SIGKILL if it has not exited after STOP_TIMEOUT_MS. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.#proc.stop(signal);
  }
}

// ---------------------------------------------------------------------------------------------------
// The mesh

export interface ServiceNode {
  readonly name: string;
  readonly workload: string;
  readonly appPort: number;
  readonly sidecarPort: number;
  /** the sidecar's admin server, e.g. http://127.0.0.1:40123 */
  readonly admin: string;
  /** who calls this service goes through here: the sidecar */
  readonly url: string;
}

export interface ForkNode {
  readonly name: string;
  /** the baseline service it stands in for */
  readonly of: string;
  readonly port: number;
  /** `host:port` as a sandbox spec's target */
  readonly target: string;
  readonly child: Child;
}

export interface SandboxNode {
  readonly name: string;
  readonly key: string;
  readonly forks: readonly ForkNode[];
}

export interface MeshOptions {
  /** service names, entry first; each calls the next one through that one's sidecar */
  readonly chain?: readonly string[];
  /** fixed listen port for the entry service's sidecar; default a free one */
  readonly entryPort?: number;
  /** control-plane data directory; default a temporary one, removed by stop() */
  readonly dataDir?: string;
  /** every child's output as it arrives (the demo's --verbose); default: kept only for error messages */
  readonly sink?: OutputSink;
  /** service → what it carries to its downstream (demo/service.ts --propagate); default all */
  readonly propagation?: Readonly<Record<string, 'all' | 'tracecontext' | 'none'>>;
}

export interface CallResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Reply;
}

export class Mesh {
  readonly chain: readonly string[];
  readonly dataDir: string;
  readonly #ownsDataDir: boolean;
  readonly #options: MeshOptions;
  readonly #services = new Map<string, ServiceNode>();
  readonly #apps = new Map<string, Child>();
  readonly #sidecars = new Map<string, Child>();
  readonly #forks = new Set<ForkNode>();
  /** every child this mesh spawned, including ones still starting */
  readonly #spawned = new Set<Child>();
  readonly #agent = new Agent({ keepAliveTimeout: 10_000, connections: 128 });
  #controlPlane: Child | undefined;
  #controlPlanePort = 0;
  #stopped = false;

  constructor(options: MeshOptions = {}) {
    this.#options = options;
    this.chain = options.chain ?? ['web', 'orders', 'payments'];
    this.#ownsDataDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'laneway-demo-'));
  }

  /** Convenience: construct and start; stops what was started if any part fails. */
  static async start(options: MeshOptions = {}): Promise<Mesh> {
    const mesh = new Mesh(options);
    try {
      await mesh.start();
    } catch (err) {
      await mesh.stop();
      throw err;
    }
    return mesh;
  }

  get controlPlaneUrl(): string {
    return `http://127.0.0.1:${this.#controlPlanePort}`;
  }

  /** The entry service's sidecar: where a client's request starts. */
  get entryUrl(): string {
    return this.service(this.chain[0]!).url;
  }

  get services(): readonly ServiceNode[] {
    return this.chain.map((name) => this.service(name));
  }

  get forks(): readonly ForkNode[] {
    return [...this.#forks];
  }

  service(name: string): ServiceNode {
    const node = this.#services.get(name);
    if (node === undefined) throw new Error(`no service ${name} in the mesh (${this.chain.join(', ')})`);
    return node;
  }

  /** Pids of every child still running. */
  pids(): number[] {
    return [...this.#spawned].filter((c) => c.alive && c.pid !== undefined).map((c) => c.pid!);
  }

  /**
   * Starts the control plane and, for each service, its app and its sidecar. Sidecar ports are picked
   * first so that all apps (which must know their downstream's sidecar) start in parallel, then all sidecars.
   */
  async start(): Promise<void> {
    const sidecarPorts = new Map<string, number>();
    for (const [i, name] of this.chain.entries()) {
      sidecarPorts.set(name, i === 0 && this.#options.entryPort !== undefined ? this.#options.entryPort : await freePort());
    }
    await Promise.all([this.startControlPlane(), ...this.chain.map((name) => this.#startApp(name, sidecarPorts))]);
    this.#checkStopped();
    await Promise.all(this.chain.map((name) => this.#startSidecarWithRetry(name, sidecarPorts)));
    this.#checkStopped();
  }

  /** Starts (or restarts, on the same port and data) the control plane; resolves once it listens. */
  async startControlPlane(): Promise<void> {
    const { child, match } = await Child.start(
      'control-plane',
      // The lane relay too, so `laneway connect` can fork a demo service to a process of the user's.
      [CLI, 'control-plane', '--listen', `127.0.0.1:${this.#controlPlanePort}`, '--data', this.dataDir, '--log-level', 'warn', '--probe-interval', '500ms', '--lane-listen', '127.0.0.1:0'],
      /listening on http:\/\/127\.0\.0\.1:(\d+)/,
      { sink: this.#options.sink, group: this.#spawned },
    );
    await this.#adopt(child);
    this.#controlPlane = child;
    this.#controlPlanePort = Number(match[1]);
  }

  /** Stops the control plane (SIGKILL simulates a crash); sidecars keep routing with their last table. */
  async stopControlPlane(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.#controlPlane?.stop(signal);
  }

  /** The downstream a service (or its fork) calls: the next service's sidecar, or none for the last. */
  #downstreamOf(name: string, sidecarPorts?: Map<string, number>): string[] {
    const next = this.chain[this.chain.indexOf(name) + 1];
    if (next === undefined) return [];
    const port = sidecarPorts?.get(next) ?? this.service(next).sidecarPort;
    return ['--call', `http://127.0.0.1:${port}`];
  }

  /** Starts a service's app (on `port`, 0 = any); records it unless it is a restart on the same port. */
  async #startApp(name: string, sidecarPorts: Map<string, number>, port = 0): Promise<void> {
    const { child, match } = await Child.start(
      `service ${name}`,
      [SERVICE, '--name', name, '--listen', `127.0.0.1:${port}`, '--propagate', this.#options.propagation?.[name] ?? 'all', ...this.#downstreamOf(name, sidecarPorts)],
      /"msg":"service listening".*"port":(\d+)/,
      { sink: this.#options.sink, group: this.#spawned },
    );
    await this.#adopt(child);
    this.#apps.set(name, child);
    if (!this.#services.has(name)) {
      this.#services.set(name, { name, workload: `${NAMESPACE}/${name}`, appPort: Number(match[1]), sidecarPort: 0, admin: '', url: '' });
    }
  }

  /**
   * A picked port can be taken by someone else before the sidecar binds it. Then: another port, and
   * the service calling this one restarts (on its own port, so its sidecar needs no change) pointing
   * at it. A fixed entry port is the caller's choice: no retry.
   */
  async #startSidecarWithRetry(name: string, sidecarPorts: Map<string, number>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#startSidecar(name, sidecarPorts.get(name)!);
        return;
      } catch (err) {
        const fixed = name === this.chain[0] && this.#options.entryPort !== undefined;
        if (fixed || attempt >= 3 || !(err instanceof ProcessFailedError) || !/EADDRINUSE/.test(err.output)) throw err;
        sidecarPorts.set(name, await freePort());
        const caller = this.chain[this.chain.indexOf(name) - 1];
        if (caller !== undefined) {
          await this.#apps.get(caller)?.stop();
          await this.#startApp(caller, sidecarPorts, this.service(caller).appPort);
        }
      }
    }
  }

  async #startSidecar(name: string, port: number): Promise<void> {
    const app = this.#services.get(name)!;
    const { child, match } = await Child.start(
      `sidecar ${name}`,
      [
        CLI, 'sidecar',
        '--workload', app.workload,
        '--port', `${port}:${app.appPort}`,
        '--control-plane', this.controlPlaneUrl,
        // Port 0: the admin address is read back from the "sidecar listening" line.
        '--admin', '127.0.0.1:0',
        // info, not warn: the "sidecar listening" line is an info line.
        '--log-level', 'info',
        '--drain-timeout', '2s',
      ],
      /[^\n]*"msg":"sidecar listening"[^\n]*/,
      { sink: this.#options.sink, group: this.#spawned },
    );
    await this.#adopt(child);
    this.#sidecars.set(name, child);
    const admin = /"admin":"([^"]+)"/.exec(match[0])?.[1];
    if (admin === undefined) throw new Error(`sidecar ${name}: no admin address in ${match[0]}`);
    const node: ServiceNode = { ...app, sidecarPort: port, admin: `http://${admin}`, url: `http://127.0.0.1:${port}` };
    this.#services.set(name, node);
    await waitFor(`sidecar ${name} ready`, async () => (await this.#get(`${node.admin}/readyz`)).status === 200);
  }

  /** Starts a fork of `of` named `name`: the same service code, calling the same downstream. */
  async startFork(of: string, name: string): Promise<ForkNode> {
    this.service(of);
    const { child, match } = await Child.start(
      `fork ${name}`,
      [SERVICE, '--name', name, '--listen', '127.0.0.1:0', ...this.#downstreamOf(of)],
      /"msg":"service listening".*"port":(\d+)/,
      { sink: this.#options.sink, group: this.#spawned },
    );
    await this.#adopt(child);
    const port = Number(match[1]);
    const fork: ForkNode = { name, of, port, target: `127.0.0.1:${port}`, child };
    this.#forks.add(fork);
    return fork;
  }

  /**
   * Registers sandbox `name` through the REST API (PUT /v1/sandboxes/:name) and resolves once every
   * forked workload's sidecar has the route, so the next request is routed by it.
   */
  async applySandbox(name: string, forks: readonly ForkNode[], opts: { routingKey?: string } = {}): Promise<SandboxNode> {
    const spec = {
      ...(opts.routingKey !== undefined ? { routingKey: opts.routingKey } : {}),
      forks: forks.map((f) => ({ workload: this.service(f.of).workload, targets: { [String(this.service(f.of).appPort)]: f.target } })),
    };
    const res = await this.api('PUT', `/v1/sandboxes/${name}`, { spec });
    if (res.status !== 200 && res.status !== 201) throw new Error(`PUT /v1/sandboxes/${name}: ${res.status} ${JSON.stringify(res.body)}`);
    const key = (res.body as { status: { routingKey: string } }).status.routingKey;
    await Promise.all(
      forks.map((f) =>
        waitFor(`sidecar ${f.of} to route ${name}`, async () =>
          (await this.routes(f.of)).routes.some((r) => r.key === key && r.sandbox === name && Object.values(r.targets).includes(f.target)),
        ),
      ),
    );
    return { name, key, forks };
  }

  /** DELETE /v1/sandboxes/:name; resolves once no sidecar of the forked workloads routes its key. */
  async deleteSandbox(sandbox: SandboxNode): Promise<void> {
    const res = await this.api('DELETE', `/v1/sandboxes/${sandbox.name}`);
    if (res.status >= 300) throw new Error(`DELETE /v1/sandboxes/${sandbox.name}: ${res.status} ${JSON.stringify(res.body)}`);
    await Promise.all(
      sandbox.forks.map((f) =>
        waitFor(`sidecar ${f.of} to drop ${sandbox.name}`, async () => !(await this.routes(f.of)).routes.some((r) => r.key === sandbox.key)),
      ),
    );
  }

  /** The route table a service's sidecar uses now (its admin `/routes`). */
  async routes(service: string): Promise<{ revision: number; connected: boolean | null; routes: { key: string; sandbox: string; targets: Record<string, string> }[] }> {
    const res = await this.#get(`${this.service(service).admin}/routes`);
    return JSON.parse(res.text);
  }

  /** One JSON call to the control plane's API. */
  async api(method: 'GET' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await request(`${this.controlPlaneUrl}${path}`, {
      method,
      dispatcher: this.#agent,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text === '' ? undefined : JSON.parse(text) };
  }

  /** GET the entry service (through its sidecar) with `baggage: laneway=<key>` when a key is given. */
  async call(key?: string, url = this.entryUrl): Promise<CallResult> {
    const res = await request(url, {
      dispatcher: this.#agent,
      headers: key === undefined ? {} : { baggage: `${BAGGAGE_KEY}=${key}` },
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: JSON.parse(text) as Reply };
  }

  /** The path a request should take when these services are forked: `{orders: 'orders-v2'}` → web, orders-v2, payments. */
  expectedPath(forks: Readonly<Record<string, string>> | readonly ForkNode[] = {}): string[] {
    const byService: Record<string, string> = Array.isArray(forks)
      ? Object.fromEntries((forks as readonly ForkNode[]).map((f) => [f.of, f.name]))
      : (forks as Record<string, string>);
    return this.chain.map((name) => byService[name] ?? name);
  }

  /** Stops every child (SIGTERM, SIGKILL after 5 s) and removes the temporary data dir. Safe to call twice, or during start(). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([...this.#spawned].map((c) => c.stop()));
    await this.#agent.close();
    if (this.#ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  #checkStopped(): void {
    if (this.#stopped) throw new Error('mesh stopped while starting');
  }

  /** A child that came up after stop() (Ctrl-C during startup) is stopped at once, not adopted. */
  async #adopt(child: Child): Promise<void> {
    if (!this.#stopped) return;
    await child.stop();
    this.#checkStopped();
  }

  async #get(url: string): Promise<{ status: number; text: string }> {
    const res = await request(url, { dispatcher: this.#agent });
    return { status: res.statusCode, text: await res.body.text() };
  }

}

/** `web → orders-v2 → payments` */
export function formatPath(path: readonly string[]): string {
  return path.join(' → ');
}
