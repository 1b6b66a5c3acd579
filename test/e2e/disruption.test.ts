// End-to-end behaviour of the mini-mesh when things change under traffic: a sandbox deleted, a fork killed, the control plane restarted.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Mesh } from '../../demo/mesh.js';
import { waitFor } from '../../core/poll.js';
import { drive, mismatches, type Sent } from '../helpers/traffic.js';

const BASELINE = ['web', 'orders', 'payments'];

let mesh: Mesh;

beforeAll(async () => {
  mesh = await Mesh.start();
});

afterAll(async () => {
  await mesh?.stop();
});

it('a sandbox deleted while traffic flows: its key goes to the baseline afterwards, and no request fails', async () => {
  const fork = await mesh.startFork('orders', 'orders-doomed');
  const sb = await mesh.applySandbox('doomed', [fork]);
  const forked = ['web', 'orders-doomed', 'payments'];

  const sent: Sent[] = [];
  let stop = false;
  const traffic = drive(mesh, { concurrency: 10, stop: () => stop, into: sent, key: (i) => (i % 2 === 0 ? sb.key : undefined) });
  let deletedAt = Infinity;
  try {
    await waitFor('keyed traffic through the fork', () => sent.filter((s) => s.path?.[1] === 'orders-doomed').length >= 30);
    await mesh.deleteSandbox(sb); // resolves once the orders sidecar no longer has the route
    deletedAt = performance.now();
    await waitFor('keyed traffic after the delete', () => sent.filter((s) => s.key === sb.key && s.startedAt > deletedAt).length >= 30);
  } finally {
    stop = true;
    await traffic;
  }

  expect(sent.filter((s) => s.status !== 200)).toEqual([]);
  // Baseline traffic never noticed.
  expect(mismatches(sent.filter((s) => s.key === undefined), () => BASELINE)).toEqual([]);
  // Keyed requests in flight around the delete may take either path, never anything else...
  expect(sent.filter((s) => s.key === sb.key && ![forked, BASELINE].some((p) => p.join('>') === s.path?.join('>')))).toEqual([]);
  // ...and every one sent after the sidecar dropped the route reached the baseline.
  const after = sent.filter((s) => s.key === sb.key && s.startedAt > deletedAt);
  expect(after.length).toBeGreaterThanOrEqual(30);
  expect(mismatches(after, () => BASELINE)).toEqual([]);
  expect(sent.filter((s) => s.key === sb.key && s.startedAt < deletedAt && s.path?.[1] === 'orders-doomed').length).toBeGreaterThanOrEqual(30);
});

it('a fork target killed: its key gets the sidecar\'s 502 JSON error (through the chain), everything else is unaffected', async () => {
  const [victim, bystander] = await Promise.all([mesh.startFork('orders', 'orders-dead'), mesh.startFork('payments', 'payments-ok')]);
  const dead = await mesh.applySandbox('dead-fork', [victim]);
  const ok = await mesh.applySandbox('live-fork', [bystander]);
  expect((await mesh.call(dead.key)).body.path).toEqual(['web', 'orders-dead', 'payments']);

  await victim.child.stop('SIGKILL');
  const keys = [dead.key, ok.key, undefined];
  const sent = await drive(mesh, { concurrency: 10, total: 150, key: (i) => keys[i % 3] });

  // The orders sidecar answers web with its own error: 502, `laneway-error`, JSON naming sandbox and target.
  const direct = await mesh.call(dead.key, mesh.service('orders').url);
  expect(direct.status).toBe(502);
  expect(direct.headers['laneway-error']).toBe('LANEWAY_ERR_SANDBOX_UNREACHABLE');
  expect(direct.headers['laneway-sandbox']).toBe('dead-fork');
  expect(direct.body).toMatchObject({ error: { code: 'LANEWAY_ERR_SANDBOX_UNREACHABLE', sandbox: 'dead-fork', target: victim.target } });

  // The caller of web sees web's own 502 (web is an ordinary service), carrying what the sidecar said.
  // Never a 200 from the baseline orders: a request addressed to a sandbox does not silently fall back.
  const deadOnes = sent.filter((s) => s.key === dead.key);
  expect(deadOnes).toHaveLength(50);
  for (const s of deadOnes) {
    expect(s.status).toBe(502);
    expect(s.body).toMatchObject({
      service: 'web',
      path: ['web'],
      error: {
        status: 502,
        from: `127.0.0.1:${mesh.service('orders').sidecarPort}`,
        lanewayError: 'LANEWAY_ERR_SANDBOX_UNREACHABLE',
        body: { error: { code: 'LANEWAY_ERR_SANDBOX_UNREACHABLE', sandbox: 'dead-fork', target: victim.target } },
      },
    });
  }
  const others = sent.filter((s) => s.key !== dead.key);
  expect(others).toHaveLength(100);
  expect(mismatches(others, (k) => (k === ok.key ? ['web', 'orders', 'payments-ok'] : BASELINE))).toEqual([]);
});

it('the control plane restarted mid-traffic: no request fails, sidecars keep their table, then resync', async () => {
  const [fork, late] = await Promise.all([mesh.startFork('orders', 'orders-steady'), mesh.startFork('payments', 'payments-late')]);
  const sb = await mesh.applySandbox('steady', [fork]);
  const expected = (k: string | undefined): string[] => (k === sb.key ? ['web', 'orders-steady', 'payments'] : BASELINE);

  const sent: Sent[] = [];
  let stop = false;
  // Modest concurrency: the restarting control plane needs CPU on 2 cores too; what matters is that
  // requests keep flowing the whole time.
  const traffic = drive(mesh, { concurrency: 4, stop: () => stop, into: sent, key: (i) => (i % 2 === 0 ? sb.key : undefined) });
  let downFor = 0;
  try {
    await waitFor('traffic before the restart', () => sent.length >= 50);

    // SIGKILL: a crash, not a goodbye. Every sidecar sees its watch stream break.
    await mesh.stopControlPlane('SIGKILL');
    const connected = async (): Promise<boolean[]> => Promise.all(mesh.chain.map(async (s) => (await mesh.routes(s)).connected === true));
    await waitFor('sidecars to notice', async () => (await connected()).every((c) => !c));
    const whileDown = sent.length;
    await waitFor('traffic while the control plane is down', () => sent.length >= whileDown + 50);
    downFor = sent.length - whileDown;

    await mesh.startControlPlane(); // same port, same data dir
    // Reconnect backoff is jittered and grows while the control plane is down (up to seconds).
    await waitFor('sidecars to resubscribe', async () => (await connected()).every(Boolean), 30_000);
    // The stored sandbox survived, and a change made after the restart reaches the sidecars.
    expect((await mesh.api('GET', '/v1/sandboxes/steady')).body).toMatchObject({ status: { routingKey: sb.key } });
    const after = await mesh.applySandbox('after-restart', [late]);
    expect((await mesh.call(after.key)).body.path).toEqual(['web', 'orders', 'payments-late']);
  } finally {
    stop = true;
    await traffic;
  }

  expect(downFor).toBeGreaterThanOrEqual(50);
  expect(mismatches(sent, expected)).toEqual([]);
  expect(sent.filter((s) => s.key === sb.key).length).toBeGreaterThanOrEqual(50);
});
