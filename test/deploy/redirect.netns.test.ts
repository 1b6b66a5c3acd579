// Pod traffic redirection for real: network namespaces as pods, the injected init container's rules and sidecar, a client calling <pod-ip>:8080.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { injectOptions, mutatePod, REDIRECT_CONTAINER, SIDECAR_CONTAINER } from '../../control-plane/admission.js';
import { CLI } from '../helpers/processes.js';
import { NetnsNode, netnsSkipReason, type HttpResult, type NsClient, type NsProcess } from './netns.js';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const REDIRECT = here('../../deploy/redirect.sh');
const APP = here('fixtures/app.mjs');
const KEY = 'netns7k3y';

const skipReason = netnsSkipReason();
if (skipReason !== null) console.warn(`[redirect.netns.test] skipped: ${skipReason}`);

// Argument checks happen before any iptables call, so they run anywhere (no root, no namespaces).
describe('redirect.sh arguments', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync('sh', [REDIRECT, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env, LANEWAY_IPTABLES: '/nonexistent/iptables' } });

  it.each([
    [['8080'], /expected <sidecarPort>:<appPort>, got '8080'/],
    [['15001:8080:1'], /expected <sidecarPort>:<appPort>/],
    [['15001:70000'], /expected <sidecarPort>:<appPort>/],
    [['15001:15001'], /would redirect a port to itself/],
    [['15001:8080', '15002:8080'], /app port 8080 given twice/],
    [['--bogus'], /unknown flag '--bogus'/],
    [[], /no ports/],
  ])('%j exits 2 with the reason', (args, message) => {
    const res = run(args as string[]);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(message);
  });

  it('reads LANEWAY_PORTS like the sidecar does (then fails only at iptables here)', () => {
    const res = run([], { LANEWAY_PORTS: '15001:8080,15002:9090' });
    expect(res.stderr).not.toMatch(/no ports|expected/);
    expect(res.status).not.toBe(0);
  });
});

describe.skipIf(skipReason !== null)('traffic redirection in network namespaces', () => {
  let node: NetnsNode;
  let orders: { ns: string; ip: string; gateway: string };
  let fork: { ns: string; ip: string };
  let client: { ns: string; ip: string };
  let sidecar: NsProcess;
  let initArgs: string[];
  let dataDir: string;

  /** HTTP clients inside the client pod, the orders pod (its loopback: admin and app) and the node. */
  const clients: Record<'client' | 'orders' | 'node', NsClient> = {} as never;

  async function call(url: string, headers: Record<string, string> = {}, from: keyof typeof clients = 'client'): Promise<HttpResult> {
    return clients[from].request(url, { headers });
  }

  /**
   * Requests the sidecar counted per decision (its /metrics, read inside the pod) and requests the
   * app itself served, read together.
   */
  async function counters(): Promise<{ baseline: number; sandbox: number; app: number }> {
    const [metrics, count] = await Promise.all([
      call('http://127.0.0.1:15000/metrics', {}, 'orders'),
      call('http://127.0.0.1:8080/count', {}, 'orders'),
    ]);
    const read = (decision: string): number => {
      const m = new RegExp(`^laneway_requests_total\\{decision="${decision}",protocol="http1"\\} (\\d+)`, 'm').exec(String(metrics.body));
      if (m === null) throw new Error(`no ${decision} counter in sidecar metrics:\n${String(metrics.body).slice(0, 500)}`);
      return Number(m[1]);
    };
    return { baseline: read('baseline'), sandbox: read('sandbox'), app: count.body.requests as number };
  }

  function natRules(): string {
    return node.sh(orders.ns, 'iptables', ['-w', '-t', 'nat', '-S']);
  }

  beforeAll(async () => {
    node = new NetnsNode();
    try {
      orders = node.addPod('orders');
      fork = node.addPod('fork');
      client = node.addPod('client');
      dataDir = mkdtempSync(join(tmpdir(), 'laneway-netns-'));

      // The control plane runs on the node, reachable from every pod at its gateway address.
      const controlPlaneUrl = `http://${orders.gateway}:7070`;
      // Started together: on a loaded 2-core CI machine each node process takes a second or more to come up.
      [clients.client, clients.orders, clients.node] = await Promise.all([
        node.client(client.ns),
        node.client(orders.ns),
        node.client(node.node),
        node.start(orders.ns, process.execPath, [APP, 'orders-app', '8080'], /listening/),
        node.start(fork.ns, process.execPath, [APP, 'orders-fork', '8080'], /listening/),
        node.start(node.node, process.execPath, [CLI, 'control-plane', '--listen', '0.0.0.0:7070', '--insecure', '--data', dataDir, '--log-level', 'warn'], /listening on/),
      ]);
      const sandbox = await clients.node.request(`${controlPlaneUrl}/v1/sandboxes/pr-7`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ spec: { routingKey: KEY, forks: [{ workload: 'default/orders', targets: { '8080': `${fork.ip}:8080` } }] } }),
      });
      expect(sandbox.status, JSON.stringify(sandbox.body)).toBe(201);

      // What the webhook injects into a Deployment's pod is exactly what runs here.
      const review = JSON.parse(readFileSync(here('fixtures/reviews/deployment-one-port.json'), 'utf8'));
      const outcome = mutatePod(review, injectOptions({ image: 'laneway:test', controlPlaneUrl }));
      expect(outcome.result).toBe('injected');
      const added = outcome.patch.map((op) => op.value as any).flat();
      initArgs = added.find((c: any) => c.name === REDIRECT_CONTAINER).args;
      const sidecarArgs: string[] = added.find((c: any) => c.name === SIDECAR_CONTAINER).args;

      // The init container: the image's /usr/local/bin/laneway-redirect is this script.
      const init = await node.exec(orders.ns, 'sh', [REDIRECT, ...initArgs]);
      expect(init.code, init.stderr).toBe(0);
      expect(init.stdout).toContain('--dport 8080 -j REDIRECT --to-ports 15001');

      sidecar = await node.start(orders.ns, process.execPath, [CLI, ...sidecarArgs], /sidecar listening/);
      // Ready = the first route table arrived from the control plane; then our sandbox's key must be in it.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const routes = await call('http://127.0.0.1:15000/routes', {}, 'orders');
        if (JSON.stringify(routes.body).includes(KEY)) break;
        if (Date.now() > deadline) throw new Error(`sidecar never got the route: ${JSON.stringify(routes.body)}\n${sidecar.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (err) {
      await node.destroy();
      throw err;
    }
  }, 120_000);

  afterAll(async () => {
    await node?.destroy();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  it('installs exactly the redirect rules, and running the init container again changes nothing', async () => {
    const before = natRules();
    expect(before).toContain('-A PREROUTING -p tcp -j LANEWAY_INBOUND');
    expect(before).toContain('-A LANEWAY_INBOUND -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 15001');
    // OUTPUT, where the sidecar's own connections go, is untouched.
    expect(before).not.toMatch(/-A OUTPUT/);
    const again = await node.exec(orders.ns, 'sh', [REDIRECT, ...initArgs]);
    expect(again.code, again.stderr).toBe(0);
    expect(natRules()).toBe(before);
  });

  it('without a key: <pod-ip>:8080 is answered by the app through the sidecar, in exactly one hop', async () => {
    const before = await counters();
    const res = await call(`http://${orders.ip}:8080/orders/1`);
    expect(res.status, JSON.stringify(res)).toBe(200);
    expect(res.body.name).toBe('orders-app');
    // The app saw the sidecar (loopback), not the client: the request was redirected...
    expect(res.body.remote).toBe('127.0.0.1');
    expect(res.body.local).toBe('127.0.0.1:8080');
    // ...through one sidecar pass only: had the sidecar's connection to 127.0.0.1:8080 been caught by
    // the rules again, the request would have gone round the sidecar, each pass adding a Via and an
    // X-Forwarded-For entry and a count in its metrics.
    expect(res.body.headers.via).toBe('1.1 laneway');
    expect(res.body.headers['x-forwarded-for']).toBe(client.ip);
    expect(res.headers?.['laneway-sandbox']).toBeUndefined();
    expect(await counters()).toEqual({ ...before, baseline: before.baseline + 1, app: before.app + 1 });
  });

  it('with a routed key: the fork in its own namespace answers', async () => {
    const before = await counters();
    const res = await call(`http://${orders.ip}:8080/orders/1`, { baggage: `laneway=${KEY}` });
    expect(res.status, JSON.stringify(res)).toBe(200);
    expect(res.body.name).toBe('orders-fork');
    expect(res.headers?.['laneway-sandbox']).toBe('pr-7');
    // the fork sees the orders pod's address: the sidecar connected out of the pod to it
    expect(res.body.remote).toBe(orders.ip);
    expect(await counters()).toEqual({ ...before, sandbox: before.sandbox + 1 });
  });

  it('leaves other ports alone: the sidecar admin port is reachable directly from outside the pod', async () => {
    const res = await call(`http://${orders.ip}:15000/readyz`);
    expect(res.status).toBe(200);
  });

  it('removing the rules restores direct traffic to the app, keys and all', async () => {
    const removed = await node.exec(orders.ns, 'sh', [REDIRECT, '--remove']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(natRules()).not.toContain('LANEWAY_INBOUND');
    const before = await counters();
    const res = await call(`http://${orders.ip}:8080/orders/1`, { baggage: `laneway=${KEY}` });
    expect(res.status).toBe(200);
    expect(res.body.name).toBe('orders-app');
    expect(res.body.remote).toBe(client.ip);
    expect(res.body.headers.via).toBeUndefined();
    // the sidecar saw nothing; the app served the request itself
    expect(await counters()).toEqual({ ...before, app: before.app + 1 });
  });
});
