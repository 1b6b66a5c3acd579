// End-to-end routing through the mini-mesh (real control plane, sidecars and services as processes): forks at each depth, parallel sandboxes, zero misroutes under load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Mesh, type ForkNode, type SandboxNode } from '../../demo/mesh.js';
import type { Reply } from '../../demo/service.js';
import { drive, mismatches } from '../helpers/traffic.js';

const BASELINE = ['web', 'orders', 'payments'];

/**
 * Ten sandboxes, each forking a different set of services with its own fork processes, so each key has
 * one path no other key produces: a request routed by the wrong key (or by none) shows up as a wrong
 * path. The first five are what the single-scenario tests look at; all ten feed the load test.
 * They are set up once because every fork is a Node process start, the slow part on 2 cores.
 */
const PLANS: Record<string, Record<string, string>> = {
  'fork-one': { orders: 'orders-v2' },
  'fork-deep': { payments: 'payments-v2' },
  'fork-two': { web: 'web-v2', payments: 'payments-v3' },
  'same-a': { orders: 'orders-a' },
  'same-b': { orders: 'orders-b' },
  'load-5': { web: 'web-s5' },
  'load-6': { orders: 'orders-s6' },
  'load-7': { payments: 'payments-s7' },
  'load-8': { web: 'web-s8', orders: 'orders-s8' },
  'load-9': { orders: 'orders-s9' },
};

let mesh: Mesh;
const sandboxes = new Map<string, SandboxNode>();

beforeAll(async () => {
  mesh = await Mesh.start();
  await Promise.all(
    Object.entries(PLANS).map(async ([name, forks]) => {
      const nodes: ForkNode[] = await Promise.all(Object.entries(forks).map(([of, fork]) => mesh.startFork(of, fork)));
      sandboxes.set(name, await mesh.applySandbox(name, nodes));
    }),
  );
});

afterAll(async () => {
  await mesh?.stop();
});

function key(sandbox: string): string {
  return sandboxes.get(sandbox)!.key;
}

describe('a sandbox forking', () => {
  it('one service: its key takes the fork, everything else the baseline', async () => {
    const keyed = await mesh.call(key('fork-one'));
    expect(keyed.status).toBe(200);
    expect(keyed.body.path).toEqual(['web', 'orders-v2', 'payments']);
    expect((await mesh.call()).body.path).toEqual(BASELINE);
    expect((await mesh.call('not-a-sandbox-key')).body.path).toEqual(BASELINE);

    // At the forked hop itself, the sidecar marks the response as the sandbox's.
    const atOrders = await mesh.call(key('fork-one'), mesh.service('orders').url);
    expect(atOrders.headers['laneway-sandbox']).toBe('fork-one');
    expect(atOrders.body.path).toEqual(['orders-v2', 'payments']);
    expect((await mesh.call(undefined, mesh.service('orders').url)).headers['laneway-sandbox']).toBeUndefined();
  });

  it('a deep service (payments): the key survives two hops of propagation by the services', async () => {
    expect((await mesh.call(key('fork-deep'))).body.path).toEqual(['web', 'orders', 'payments-v2']);
    expect((await mesh.call()).body.path).toEqual(BASELINE);

    // Each service re-serialises baggage with OpenTelemetry's propagator: other members, properties,
    // whitespace and a second header must not lose the key on the way down (W3C Baggage §3.3).
    const k = key('fork-deep');
    const variants: [string, string][][] = [
      [['baggage', `user=alice, laneway=${k};ttl=1 , tenant=a%20b`]],
      [['baggage', ` laneway = ${k} `]],
      [['baggage', 'user=alice'], ['baggage', `laneway=${k}`]],
      [['baggage', `laneway=${k}`], ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']],
    ];
    for (const headers of variants) {
      const res = await request(mesh.entryUrl, { headers: headers.flat() });
      expect(((await res.body.json()) as Reply).path, JSON.stringify(headers)).toEqual(['web', 'orders', 'payments-v2']);
    }
    // A different member name is not the key.
    const other = await request(mesh.entryUrl, { headers: { baggage: `laneway2=${k}` } });
    expect(((await other.body.json()) as Reply).path).toEqual(BASELINE);
  });

  it('two services at once (web and payments): the baseline orders in between carries the key on', async () => {
    const keyed = await mesh.call(key('fork-two'));
    expect(keyed.body.path).toEqual(['web-v2', 'orders', 'payments-v3']);
    expect(keyed.headers['laneway-sandbox']).toBe('fork-two');
    expect((await mesh.call()).body.path).toEqual(BASELINE);
  });
});

it('two sandboxes forking the same service with different keys, in parallel, never cross', async () => {
  const [a, b] = [key('same-a'), key('same-b')];
  const keys = [a, b, undefined];
  const expected = (k: string | undefined): string[] =>
    k === a ? ['web', 'orders-a', 'payments'] : k === b ? ['web', 'orders-b', 'payments'] : BASELINE;

  const sent = await drive(mesh, { concurrency: 20, total: 300, key: (i) => keys[i % 3] });

  expect(sent).toHaveLength(300);
  expect(mismatches(sent, expected)).toEqual([]);
  expect(sent.filter((s) => s.key === a && s.path?.[1] === 'orders-a')).toHaveLength(100);
  expect(sent.filter((s) => s.key === b && s.path?.[1] === 'orders-b')).toHaveLength(100);
});

it('2,000 requests, 50 at a time, keys from 10 sandboxes plus none: zero misroutes', async () => {
  const expectedByKey = new Map<string | undefined, string[]>([[undefined, BASELINE]]);
  for (const [name, forks] of Object.entries(PLANS)) expectedByKey.set(key(name), mesh.expectedPath(forks));
  expect(new Set([...expectedByKey.values()].map((p) => p.join('>'))).size).toBe(11); // every key distinguishable
  const choices = [...expectedByKey.keys()];

  const seed = Number(process.env.E2E_SEED ?? Date.now()) >>> 0; // E2E_SEED=<n> replays a draw
  const random = mulberry32(seed);
  const started = performance.now();
  const sent = await drive(mesh, { concurrency: 50, total: 2000, key: () => choices[Math.floor(random() * choices.length)] });
  const seconds = (performance.now() - started) / 1000;

  const wrong = mismatches(sent, (k) => expectedByKey.get(k)!);
  expect(wrong.slice(0, 5), `seed ${seed}: ${wrong.length} misrouted or failed`).toEqual([]);
  expect(sent).toHaveLength(2000);
  const perKey = choices.map((k) => sent.filter((s) => s.key === k).length);
  expect(perKey.every((n) => n > 0)).toBe(true);
  expect(perKey.reduce((x, y) => x + y, 0)).toBe(2000);
  console.info(`e2e load: 2000 requests (11 keys, seed ${seed}) in ${seconds.toFixed(2)} s, ${(2000 / seconds).toFixed(0)} req/s, 0 misroutes`);
});

/** A small seeded PRNG: a failing draw can be replayed from the seed in the message. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
