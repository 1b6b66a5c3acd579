// A real 3-member etcd cluster on 127.0.0.1 (random ports, temp data dirs), members stoppable and restartable: for the etcd tests and the scale bench.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { freePort } from '../../core/process.js';

/** The `etcd` binary from Debian's etcd-server package, or undefined where it is not installed. */
export const ETCD_BINARY: string | undefined = (() => {
  const found = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() !== '' ? found.stdout.trim() : undefined;
})();

/** Why etcd suites skip (printed once by each): CI installs the package (.ci/run), so there they run. */
export const ETCD_SKIP_REASON = 'etcd is not installed (apt-get install etcd-server): skipping the etcd store tests';

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  child: ChildProcess | null;
  output: string;
}

export class EtcdCluster {
  readonly members: Member[];
  readonly #root: string;
  readonly #token = `laneway-test-${randomUUID()}`;

  private constructor(root: string, members: Member[]) {
    this.#root = root;
    this.members = members;
  }

  /** `host:port,host:port,…` of every member's client URL: what `--store etcd://` takes. */
  get endpoints(): string {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`).join(',');
  }

  /** A `--store` value on its own key prefix, so suites sharing a cluster never see each other's keys. */
  storeUrl(prefix = `t${randomUUID().slice(0, 8)}`): string {
    return `etcd://${this.endpoints}/${prefix}`;
  }

  /** Starts `size` members; a port taken between picking and binding it (other processes share the machine) means a fresh try. */
  static async start(size = 3): Promise<EtcdCluster> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await EtcdCluster.#startOnce(size);
      } catch (err) {
        if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err;
      }
    }
  }

  static async #startOnce(size: number): Promise<EtcdCluster> {
    if (ETCD_BINARY === undefined) throw new Error(ETCD_SKIP_REASON);
    const root = mkdtempSync(join(tmpdir(), 'laneway-etcd-'));
    const ports = new Set<number>();
    while (ports.size < size * 2) ports.add(await freePort());
    const [...free] = ports;
    const members: Member[] = [];
    for (let i = 0; i < size; i++) {
      members.push({ name: `m${i}`, clientPort: free[2 * i]!, peerPort: free[2 * i + 1]!, dataDir: join(root, `m${i}`), child: null, output: '' });
    }
    const cluster = new EtcdCluster(root, members);
    for (const m of members) cluster.#spawn(m);
    try {
      await Promise.all(members.map((m) => cluster.#waitHealthy(m, 60_000)));
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  #spawn(m: Member): void {
    const initialCluster = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
    const child = spawn(
      ETCD_BINARY as string,
      [
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`,
        '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
        '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', this.#token,
        '--initial-cluster-state', 'new',
        '--log-level', 'error',
        // A loaded 2-core machine: the defaults (100 ms / 1 s) make leader elections flap under load.
        '--heartbeat-interval', '200',
        '--election-timeout', '2000',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    m.child = child;
    child.stdout?.on('data', (d: Buffer) => (m.output = (m.output + d.toString()).slice(-20_000)));
    child.stderr?.on('data', (d: Buffer) => (m.output = (m.output + d.toString()).slice(-20_000)));
  }

  /** Polls the member's /health until it reports a cluster with a leader. */
  async #waitHealthy(m: Member, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${m.clientPort}/health`, { signal: AbortSignal.timeout(2_000) });
        const body = (await res.json()) as { health?: string };
        if (body.health === 'true') return;
      } catch {
        // not up yet
      }
      if (m.child?.exitCode !== null && m.child?.exitCode !== undefined) throw new Error(`etcd ${m.name} exited ${m.child.exitCode}:\n${m.output}`);
      if (Date.now() > deadline) throw new Error(`etcd ${m.name} not healthy within ${timeoutMs} ms:\n${m.output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Stops member `i` (SIGKILL by default: a crashed member). Its data stays for `restart`. */
  async stop(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const m = this.members[i]!;
    const child = m.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await once(child, 'exit');
    m.child = null;
  }

  /** Starts member `i` again on its data dir and waits until the cluster is healthy through it. */
  async restart(i: number): Promise<void> {
    const m = this.members[i]!;
    if (m.child !== null) return;
    this.#spawn(m);
    await this.#waitHealthy(m, 60_000);
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.stop(i)));
    rmSync(this.#root, { recursive: true, force: true });
  }
}
