// Sandbox phase from TCP probes of real listeners: Ready when every target accepts, Pending with the reason per target otherwise.
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { afterAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { freePort } from '../helpers/processes.js';
import { call, listenApp, removeTempDirs } from './helpers.js';
import { poll } from '../../core/poll.js';

const servers: Server[] = [];
let app: FastifyInstance | undefined;

async function tcpListener(port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.destroy());
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return { server, port: (server.address() as { port: number }).port };
}

afterAll(async () => {
  for (const s of servers) s.close();
  await app?.close();
  removeTempDirs();
});

async function until(url: string, name: string, predicate: (s: any) => boolean, timeoutMs = 10_000): Promise<any> {
  const { ok, value } = await poll(async () => (await call(url, 'GET', `/v1/sandboxes/${name}`)).body, predicate, { timeoutMs, intervalMs: 50 });
  if (!ok) throw new Error(`timed out; last status ${JSON.stringify(value?.status)}`);
  return value;
}

it('goes Ready when all targets accept TCP, back to Pending with reasons when one stops', async () => {
  const listening = await tcpListener();
  const later = await freePort();
  let url: string;
  ({ app, url } = await listenApp({ probeIntervalMs: 200 }));
  await call(url, 'PUT', '/v1/sandboxes/pr-1', {
    spec: {
      forks: [
        { workload: 'default/orders', targets: { '8080': `127.0.0.1:${listening.port}` } },
        { workload: 'default/payments', targets: { '9090': `127.0.0.1:${later}` } },
      ],
    },
  });
  const pending = await until(url, 'pr-1', (s) => s.status.targets.every((t: { checkedAt: string | null }) => t.checkedAt !== null));
  expect(pending.status.phase).toBe('Pending');
  expect(pending.status.targets).toEqual([
    expect.objectContaining({ workload: 'default/orders', port: '8080', ready: true, reason: null }),
    expect.objectContaining({ workload: 'default/payments', port: '9090', ready: false, reason: 'ECONNREFUSED' }),
  ]);

  // The fork comes up: the next probe round notices.
  await tcpListener(later);
  const ready = await until(url, 'pr-1', (s) => s.status.phase === 'Ready');
  expect(ready.status.targets.every((t: { ready: boolean }) => t.ready)).toBe(true);

  // And goes away again.
  listening.server.close();
  const down = await until(url, 'pr-1', (s) => s.status.phase === 'Pending');
  expect(down.status.targets[0]).toMatchObject({ ready: false, reason: 'ECONNREFUSED' });
});

it('probes a new sandbox right away rather than a whole interval later', async () => {
  const listening = await tcpListener();
  const { app: slow, url } = await listenApp({ probeIntervalMs: 60_000 });
  try {
    await call(url, 'PUT', '/v1/sandboxes/quick', { spec: { forks: [{ workload: 'a/b', targets: { '1': `127.0.0.1:${listening.port}` } }] } });
    const ready = await until(url, 'quick', (s) => s.status.phase === 'Ready', 5000); // the interval is 60s: only the kick can do it
    expect(ready.status.targets[0].ready).toBe(true);
  } finally {
    await slow.close();
  }
});
