// Load loops shared by the latency and cost suites: checked requests, a timed closed loop and a fixed-rate open loop.
import type { RecordableHistogram } from 'node:perf_hooks';
import type { Client, Pool } from 'undici';
import type { Contender } from './contenders.js';
import type { BaseContext } from './suite.js';

/** What a request needs: where to send it, with which headers, and the body the right upstream answers. */
export interface Target extends Pick<Contender, 'headers' | 'expectBody'> {
  readonly name: string;
}

/** One request; resolves false (and reports) on a wrong status or body. */
export async function requestOnce(ctx: BaseContext, client: Client | Pool, c: Target, what: string): Promise<boolean> {
  try {
    const { statusCode, body } = await client.request({ path: '/', method: 'GET', headers: c.headers });
    const text = await body.text();
    if (statusCode !== 200 || text !== c.expectBody) {
      ctx.fail(`${what}/${c.name}: got ${statusCode} '${text.slice(0, 80)}', expected 200 '${c.expectBody}'`);
      return false;
    }
    return true;
  } catch (err) {
    ctx.fail(`${what}/${c.name}: ${(err as Error).message}`);
    return false;
  }
}

/**
 * Up to `count` sequential requests on one connection, each timed with hrtime (ns), stopping after
 * `maxMs` so a starved machine cannot stretch a run past its time budget.
 */
export async function closedLoop(ctx: BaseContext, client: Client, c: Target, count: number, h: RecordableHistogram | null, maxMs = Number.POSITIVE_INFINITY): Promise<number> {
  const deadline = performance.now() + maxMs;
  let i = 0;
  for (; i < count; i++) {
    const start = process.hrtime.bigint();
    if (!(await requestOnce(ctx, client, c, 'latency'))) break;
    if (h !== null) h.record(Number(process.hrtime.bigint() - start));
    if ((i & 63) === 0 && performance.now() > deadline) break;
  }
  return i;
}

/**
 * Open loop: request i is due at start + i/rate whether or not earlier ones finished, and its latency
 * is measured from when it was due (so a stall is charged to every request it delayed — no
 * coordinated omission). A 1 ms timer sends whatever is due, so the client does not spin a core.
 */
export async function openLoop(ctx: BaseContext, pool: Pool, c: Target, rate: number, durationS: number, h: RecordableHistogram): Promise<void> {
  const total = Math.round(rate * durationS);
  const intervalNs = 1e9 / rate;
  const start = process.hrtime.bigint();
  let sent = 0;
  let done = 0;
  await new Promise<void>((resolve) => {
    const finish = (dueNs: bigint, ok: boolean): void => {
      if (ok) h.record(Math.max(1, Number(process.hrtime.bigint() - dueNs)));
      if (++done === total) resolve();
    };
    const tick = (): void => {
      const elapsed = Number(process.hrtime.bigint() - start);
      while (sent < total && sent * intervalNs <= elapsed) {
        const due = start + BigInt(Math.round(sent * intervalNs));
        sent++;
        requestOnce(ctx, pool, c, 'open-loop').then((ok) => finish(due, ok));
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
}
