// Leadership on etcd: a lease-based election (etcd3's Election) picks the one replica that runs the TTL sweeper and the prober.
import { randomUUID } from 'node:crypto';
import type { Campaign, Namespace } from 'etcd3';
import type { FastifyBaseLogger } from 'fastify';
import type { Leadership } from './leadership.js';

/** After losing a campaign (lease lost, etcd unreachable) a replica waits this long before campaigning again. */
export const RECAMPAIGN_DELAY_MS = 1_000;

/**
 * Every replica campaigns; etcd's election grants the key to the oldest live candidate, whose
 * lease keeps it. When the leader dies its lease runs out (at most `ttlSeconds`) and the next
 * candidate is elected. A leader that loses its lease (partitioned from etcd longer than the TTL)
 * stops leading at once and campaigns again.
 */
export class EtcdLeadership implements Leadership {
  readonly id: string;
  #leading = false;
  #campaign: Campaign | null = null;
  #closed = false;
  #retry: NodeJS.Timeout | null = null;
  readonly #ns: Namespace;
  readonly #ttlSeconds: number;
  readonly #log: FastifyBaseLogger;
  readonly #elected: () => void;

  /** `elected` runs each time this replica becomes the leader (start a sweep now rather than at the next tick). */
  constructor(ns: Namespace, ttlSeconds: number, log: FastifyBaseLogger, elected: () => void, id = randomUUID()) {
    this.#ns = ns;
    this.#ttlSeconds = ttlSeconds;
    this.#log = log;
    this.#elected = elected;
    this.id = id;
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(): void {
    if (this.#closed || this.#campaign !== null) return;
    const campaign = this.#ns.election('leader', this.#ttlSeconds).campaign(this.id);
    this.#campaign = campaign;
    campaign.on('elected', () => {
      if (this.#campaign !== campaign) return;
      this.#leading = true;
      this.#log.info({ replica: this.id }, 'elected: this replica runs the TTL sweeper and the prober');
      this.#elected();
    });
    campaign.on('error', (err: Error) => {
      if (this.#campaign !== campaign) return;
      if (this.#leading) this.#log.warn({ err: err.message, replica: this.id }, 'lost the leader lease');
      this.#leading = false;
      this.#campaign = null;
      void campaign.resign().catch(() => {});
      if (!this.#closed) {
        this.#retry = setTimeout(() => this.start(), RECAMPAIGN_DELAY_MS);
        this.#retry.unref();
      }
    });
  }

  /** Resigns (so another replica takes over at once, not after the lease) and stops campaigning. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#leading = false;
    if (this.#retry !== null) clearTimeout(this.#retry);
    const campaign = this.#campaign;
    this.#campaign = null;
    if (campaign !== null) await campaign.resign().catch(() => {});
  }
}
