// A closed loop of keyed GETs on N keep-alive connections for a time: requests/s and each request's latency, every answer checked.
import { Pool } from 'undici';
import { nsHistogram, percentilesUs, type Percentiles } from './stats.js';
import type { BaseContext } from './suite.js';

/** `label` names the subject in failures; every answer must be 200 with `expectBody`. */
export async function closedLoop(ctx: BaseContext, url: string, label: string, key: string, expectBody: string, ms: number, connections: number): Promise<{ rate: number; latency: Percentiles }> {
  const pool = new Pool(url, { connections, pipelining: 1 });
  const histogram = nsHistogram();
  const headers = { baggage: `laneway=${key}` };
  const deadline = performance.now() + ms;
  let count = 0;
  let wrong = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const start = process.hrtime.bigint();
      const { statusCode, body } = await pool.request({ path: '/', method: 'GET', headers });
      const text = await body.text();
      histogram.record(Number(process.hrtime.bigint() - start) || 1);
      if (statusCode !== 200 || text !== expectBody) wrong++;
      count++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = performance.now() - started;
  await pool.close();
  if (wrong > 0) ctx.fail(`${label}: ${wrong} of ${count} requests not answered 200 by the fork`);
  return { rate: (count * 1000) / elapsed, latency: percentilesUs(histogram) };
}
