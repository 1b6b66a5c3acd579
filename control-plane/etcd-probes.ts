// Probe results shared through etcd: the leader's prober writes each change of a target's health; every replica follows them.
import type { Namespace, Watcher } from 'etcd3';
import type { TargetHealth } from './probe.js';
import { guard } from './etcd-store.js';

/**
 * Only the leader probes, so the others learn target health from here and every replica reports
 * the same phase. Keys `probes/<target>` hold the TargetHealth JSON; written only when readiness or
 * reason changes (not every round), so a steady fleet costs no writes.
 */
export class SharedHealth {
  readonly #ns: Namespace;
  readonly #health = new Map<string, TargetHealth>();
  #watcher: Watcher | null = null;
  #closed = false;

  constructor(ns: Namespace) {
    this.#ns = ns;
  }

  /** Loads the current results and follows their changes (etcd3 resumes the watch across reconnects). */
  async start(): Promise<void> {
    const response = await guard(() => this.#ns.getAll().prefix('').exec());
    for (const kv of response.kvs) this.#set(kv.key.toString('utf8'), kv.value.toString('utf8'));
    const watcher = await this.#ns.watch().prefix('').startRevision(String(BigInt(String(response.header.revision)) + 1n)).create();
    if (this.#closed) {
      await watcher.cancel();
      return;
    }
    this.#watcher = watcher;
    watcher.on('put', (kv) => this.#set(kv.key.toString('utf8'), kv.value.toString('utf8')));
    watcher.on('delete', (kv) => this.#health.delete(kv.key.toString('utf8')));
  }

  get(target: string): TargetHealth | undefined {
    return this.#health.get(target);
  }

  /** The leader's prober saw `target` change; a failed write (etcd away) is retried by the next change or leader. */
  async publish(target: string, health: TargetHealth): Promise<void> {
    this.#health.set(target, health);
    await this.#ns.put(target).value(JSON.stringify(health));
  }

  close(): void {
    this.#closed = true;
    void this.#watcher?.cancel().catch(() => {});
  }

  #set(key: string, value: string): void {
    try {
      this.#health.set(key, Object.freeze(JSON.parse(value) as TargetHealth));
    } catch {
      // not ours: ignore
    }
  }
}
