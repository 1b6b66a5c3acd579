// A local lane across network namespaces: the "laptop" can reach only the control plane's API port and nothing can
// reach the laptop, yet keyed requests at the orders sidecar are answered by the laptop's service.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from '../helpers/processes.js';
import { waitFor } from '../../core/poll.js';
import { NetnsNode, netnsSkipReason, type NsClient, type NsProcess } from './netns.js';

const APP = fileURLToPath(new URL('fixtures/app.mjs', import.meta.url));
const skipReason = netnsSkipReason();
if (skipReason !== null) console.warn(`[lanes.netns.test] skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)('a local lane from a laptop namespace that only reaches the control plane', () => {
  let node: NetnsNode;
  let orders: { ns: string; ip: string; gateway: string };
  let laptop: { ns: string; ip: string; gateway: string };
  let fromNode: NsClient;
  let fromOrders: NsClient;
  let connect: NsProcess;
  let key: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    node = new NetnsNode();
    try {
      orders = node.addPod('orders');
      laptop = node.addPod('laptop');
      const dataDir = mkdtempSync(join(tmpdir(), 'laneway-lanes-netns-'));
      const stateHome = mkdtempSync(join(tmpdir(), 'laneway-lanes-netns-state-'));
      dirs.push(dataDir, stateHome);
      // The laptop accepts nothing from outside and may open connections only to the API port.
      node.sh(laptop.ns, 'iptables', ['-w', '-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT']);
      node.sh(laptop.ns, 'iptables', ['-w', '-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']);
      // Refused rather than dropped: the test sees the answer at once instead of a timeout.
      node.sh(laptop.ns, 'iptables', ['-w', '-A', 'INPUT', '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset']);
      node.sh(laptop.ns, 'iptables', ['-w', '-P', 'INPUT', 'DROP']);
      node.sh(laptop.ns, 'iptables', ['-w', '-A', 'OUTPUT', '-o', 'lo', '-j', 'ACCEPT']);
      node.sh(laptop.ns, 'iptables', ['-w', '-A', 'OUTPUT', '-p', 'tcp', '-d', laptop.gateway, '--dport', '7070', '-j', 'ACCEPT']);
      node.sh(laptop.ns, 'iptables', ['-w', '-A', 'OUTPUT', '-p', 'tcp', '--tcp-flags', 'RST', 'RST', '-j', 'ACCEPT']); // the refusals above
      node.sh(laptop.ns, 'iptables', ['-w', '-P', 'OUTPUT', 'DROP']);

      const [n, o] = await Promise.all([
        node.client(node.node),
        node.client(orders.ns),
        node.start(orders.ns, process.execPath, [APP, 'orders-app', '8080'], /listening/),
        node.start(laptop.ns, process.execPath, [APP, 'laptop-app', '3000'], /listening/),
        node.start(
          node.node,
          process.execPath,
          // The relay is advertised at the orders pod's gateway: what its sidecar dials for local forks.
          [CLI, 'control-plane', '--listen', '0.0.0.0:7070', '--insecure', '--data', dataDir, '--log-level', 'warn', '--probe-interval', '0', '--lane-listen', '0.0.0.0:7071', '--lane-advertise', `${orders.gateway}:7071`],
          /listening on/,
        ),
      ]);
      [fromNode, fromOrders] = [n, o];
      await node.start(
        orders.ns,
        process.execPath,
        [CLI, 'sidecar', '--workload', 'default/orders', '--port', '15001:8080', '--listen-host', '0.0.0.0', '--admin', '127.0.0.1:15000', '--control-plane', `http://${orders.gateway}:7070`],
        /sidecar listening/,
      );
      const started = await node.start(
        laptop.ns,
        'env',
        [`XDG_STATE_HOME=${stateHome}`, process.execPath, CLI, 'connect', '--server', `http://${laptop.gateway}:7070`, '--sandbox', 'pr-7', '--workload', 'default/orders', '--port', '8080=127.0.0.1:3000'],
        /routing key: (\S+)/,
      );
      connect = started;
      key = /routing key: (\S+)/.exec(started.output())![1]!;
      const keyed = { headers: { baggage: `laneway=${key}` } };
      await waitFor('the laptop answering at the orders sidecar', async () => (await fromNode.request(`http://${orders.ip}:15001/`, keyed)).body?.name === 'laptop-app', 20_000, 100);
    } catch (err) {
      await node.destroy();
      throw err;
    }
  }, 120_000);

  afterAll(async () => {
    await node?.destroy();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('keyed requests reach the laptop; the rest reach the baseline', async () => {
    const keyed = await fromNode.request(`http://${orders.ip}:15001/x`, { headers: { baggage: `laneway=${key}` } });
    expect(keyed.status).toBe(200);
    expect(keyed.body.name).toBe('laptop-app');
    expect(keyed.headers?.['laneway-sandbox']).toBe('pr-7');
    const plain = await fromNode.request(`http://${orders.ip}:15001/x`);
    expect(plain.body.name).toBe('orders-app');
  });

  it('the orders pod cannot reach the laptop directly (only the tunnel can)', async () => {
    const direct = await fromOrders.request(`http://${laptop.ip}:3000/`);
    expect(direct.error).toBe('ECONNREFUSED');
    expect(direct.status).toBeUndefined();
  }, 30_000);
});
