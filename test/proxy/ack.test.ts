// The sidecar's acknowledger against a real HTTP server: a burst of applied revisions costs a couple of requests ending at the newest,
// a refusal is logged once and never retried in a loop, and a new stream re-sends what is already applied.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { pino } from 'pino';
import { Acknowledger, replicaId } from '../../proxy/ack.js';
import { waitFor } from '../../core/poll.js';

interface Seen {
  readonly path: string;
  readonly auth: string | undefined;
  readonly body: { replica: string; revision: number };
}

let server: Server | undefined;
let acks: Acknowledger | undefined;

afterEach(async () => {
  acks?.stop();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
});

async function start(status: () => number): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization, body: JSON.parse(text) });
      // A slow control plane: revisions applied meanwhile must collapse.
      setTimeout(() => res.writeHead(status(), { 'content-type': 'application/json' }).end('{"known":true}'), 20);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, seen };
}

function logger(lines: string[]) {
  return pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
}

it('collapses a burst of 1,000 revisions into at most two requests, the last for the newest', async () => {
  const { url, seen } = await start(() => 200);
  acks = new Acknowledger(url, 'shop/orders', 'tok-123', 'pod-a/7', logger([]));
  for (let r = 1; r <= 1000; r++) acks.applied(r);
  await waitFor('the newest revision to be acknowledged', () => seen.at(-1)?.body.revision === 1000);
  expect(seen.length).toBeLessThanOrEqual(2);
  expect(seen[0]).toEqual({ path: '/v1/workloads/shop/orders/acks', auth: 'Bearer tok-123', body: { replica: 'pod-a/7', revision: 1 } });
  // The same revision again is not sent again, until a new stream makes the control plane forget it.
  acks.applied(1000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(seen.at(-1)?.body.revision).toBe(1000);
  const before = seen.length;
  acks.reconnected();
  acks.applied(1000);
  await waitFor('the re-sent acknowledgement', () => seen.length === before + 1);
});

it('logs a refusal once and sends again only when a new revision is applied', async () => {
  const { url, seen } = await start(() => 403);
  const lines: string[] = [];
  acks = new Acknowledger(url, 'shop/orders', undefined, 'pod-b/1', logger(lines));
  acks.applied(5);
  await waitFor('the first attempt', () => seen.length === 1);
  await new Promise((resolve) => setTimeout(resolve, 150));
  expect(seen).toHaveLength(1); // no retry loop
  acks.applied(6);
  await waitFor('the second attempt', () => seen.length === 2);
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(seen[1]!.auth).toBeUndefined();
  expect(lines.filter((l) => l.includes('cannot acknowledge'))).toHaveLength(1);
  expect(lines[0]).toContain('403');
});

it('names the replica by host and process id', () => {
  expect(replicaId()).toMatch(new RegExp(`/${process.pid}$`));
});
