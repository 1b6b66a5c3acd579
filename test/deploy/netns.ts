// Test helper: a throwaway "node" of Linux network namespaces joined by veth pairs, with processes run inside them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { waitForOutput } from '../helpers/processes.js';

/** Namespaces this helper creates are named `lwt-<pid>-<id>-<role>`, so stale ones can be told apart. */
const PREFIX = 'lwt-';

function run(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why namespace tests cannot run here (null = they can): not root, tools missing, or the kernel refuses. */
export function netnsSkipReason(): string | null {
  if (process.platform !== 'linux') return `needs Linux network namespaces (platform is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root for ip netns and iptables';
  for (const [cmd, arg, pkg] of [
    ['ip', '-V', 'iproute2'],
    ['iptables', '--version', 'iptables'],
    ['iptables-restore', '--version', 'iptables'],
  ] as const) {
    try {
      run(cmd, [arg]);
    } catch {
      return `'${cmd}' not found (apt-get install -y ${pkg})`;
    }
  }
  const probe = `${PREFIX}${process.pid}-probe`;
  try {
    run('ip', ['netns', 'add', probe]);
    run('ip', ['netns', 'exec', probe, 'iptables', '-w', '-t', 'nat', '-L', '-n']);
    return null;
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? err).trim().split('\n')[0];
    return `network namespaces or the iptables nat table are not usable here: ${stderr}`;
  } finally {
    try {
      run('ip', ['netns', 'del', probe]);
    } catch {
      /* it was never created */
    }
  }
}

/** Kills every process still inside `ns` (children of children included), then deletes it. */
function deleteNamespace(ns: string): void {
  try {
    for (const pid of run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  } catch {
    /* no such namespace */
  }
  try {
    run('ip', ['netns', 'del', ns]);
  } catch {
    /* already gone */
  }
}

/** Deletes namespaces left by test runs whose process is gone (a run killed before its cleanup). */
function sweepStale(): void {
  let list = '';
  try {
    list = run('ip', ['netns', 'list']);
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^lwt-(\d+)-/.exec(name);
    if (m === null) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      deleteNamespace(name);
    }
  }
}

const CLIENT = fileURLToPath(new URL('fixtures/client.mjs', import.meta.url));

export interface HttpResult {
  readonly status?: number;
  readonly headers?: Record<string, string | string[] | undefined>;
  readonly body?: any;
  /** the socket error code when there was no response */
  readonly error?: string;
}

/** Requests made by a process inside a namespace, each on a fresh connection; one JSON line each way. */
export class NsClient {
  readonly #proc: NsProcess;
  readonly #pending = new Map<number, (r: HttpResult) => void>();
  #next = 0;
  #buffer = '';

  constructor(proc: NsProcess) {
    this.#proc = proc;
    proc.child.stdout!.on('data', (d: Buffer) => {
      this.#buffer += d.toString();
      let nl: number;
      while ((nl = this.#buffer.indexOf('\n')) !== -1) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        const { id, ...result } = JSON.parse(line) as HttpResult & { id: number };
        this.#pending.get(id)?.(result);
        this.#pending.delete(id);
      }
    });
  }

  request(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpResult> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer for ${url} within 20s`)), 20_000);
      this.#pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.#proc.child.stdin!.write(`${JSON.stringify({ id, url, ...options })}\n`);
    });
  }
}

export interface NsProcess {
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * A node namespace that routes between pod namespaces, Calico-style: every pod gets a veth pair whose
 * node end is its /30 gateway, and the node forwards. Nothing is created in the host's namespace, so
 * deleting the namespaces removes every interface too.
 */
export class NetnsNode {
  readonly id = `${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly node = `${PREFIX}${this.id}-node`;
  readonly #namespaces: string[] = [];
  readonly #processes = new Set<ChildProcess>();
  #pods = 0;
  readonly #onExit = (): void => this.destroySync();

  constructor() {
    sweepStale();
    process.on('exit', this.#onExit);
    this.#addNamespace(this.node);
    this.sh(this.node, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  }

  #addNamespace(name: string): void {
    run('ip', ['netns', 'add', name]);
    this.#namespaces.push(name);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  /**
   * A pod namespace with `eth0` on `base+2/30` and a default route to the node at `base+1`. Addresses
   * come from 198.18.0.0/15 (RFC 2544, reserved for benchmarking): they exist only inside these
   * namespaces and clash with no real network.
   */
  addPod(role: string): { ns: string; ip: string; gateway: string } {
    const index = this.#pods++;
    const ns = `${PREFIX}${this.id}-${role}`;
    this.#addNamespace(ns);
    const gateway = `198.18.0.${index * 4 + 1}`;
    const ip = `198.18.0.${index * 4 + 2}`;
    // veth names are at most 15 bytes; the node end is unique within the node namespace only.
    const nodeEnd = `veth${index}`;
    run('ip', ['-n', this.node, 'link', 'add', nodeEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    run('ip', ['-n', this.node, 'addr', 'add', `${gateway}/30`, 'dev', nodeEnd]);
    run('ip', ['-n', this.node, 'link', 'set', nodeEnd, 'up']);
    run('ip', ['-n', ns, 'addr', 'add', `${ip}/30`, 'dev', 'eth0']);
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', ns, 'route', 'add', 'default', 'via', gateway]);
    return { ns, ip, gateway };
  }

  /** Runs a command inside `ns` to completion, synchronously; throws with stderr on failure. */
  sh(ns: string, cmd: string, args: readonly string[]): string {
    return run('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** Runs a command inside `ns` to completion; never throws. */
  async exec(ns: string, cmd: string, args: readonly string[]): Promise<ExecResult> {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stdout, stderr };
  }

  /** Starts a long-running process inside `ns`; resolves once its output matches `ready`. */
  async start(ns: string, cmd: string, args: readonly string[], ready: RegExp, timeoutMs = 40_000, stdin = false): Promise<NsProcess> {
    // `ip netns exec` execs the command, so the child's pid is the command's own: signals reach it.
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    this.#processes.add(child);
    const exited = once(child, 'exit');
    void exited.then(() => this.#processes.delete(child));
    const output = await waitForOutput(child, ready, `${cmd} ${args.join(' ')} in ${ns}`, timeoutMs);
    return {
      child,
      output,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      },
    };
  }

  /** An HTTP client living in `ns` (fixtures/client.mjs), for requests made from inside that namespace. */
  async client(ns: string): Promise<NsClient> {
    const proc = await this.start(ns, process.execPath, [CLIENT], /client ready/, 40_000, true);
    return new NsClient(proc);
  }

  /** Kills what is still running and deletes every namespace; safe to call twice. */
  async destroy(): Promise<void> {
    const waits = [...this.#processes].map((child) => {
      child.kill('SIGKILL');
      return once(child, 'exit');
    });
    await Promise.all(waits);
    this.destroySync();
  }

  /** The synchronous part, also run from process 'exit' so a crashed test run leaves nothing behind. */
  destroySync(): void {
    for (const child of this.#processes) child.kill('SIGKILL');
    for (const ns of this.#namespaces.splice(0).reverse()) deleteNamespace(ns);
    process.off('exit', this.#onExit);
  }

  get namespaces(): readonly string[] {
    return this.#namespaces;
  }
}
