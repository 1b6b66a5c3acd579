// The propagation doctor on the demo mesh (web → orders → payments, real processes): one mesh where orders drops the
// routing key, one where it keeps trace context but not baggage, one where every service propagates.
import { afterAll, describe, expect, it } from 'vitest';
import { Mesh } from '../../demo/mesh.js';
import { LanewayClient } from '../../client/api.js';
import { analyze, runDoctor } from '../../client/doctor.js';
import { CLI, runLaneway } from '../helpers/processes.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { waitFor } from '../../core/poll.js';
import { call } from '../control-plane/helpers.js';
import type { ProbeResult } from '../../model/capture.js';

const meshes: Mesh[] = [];
/** the mesh where every service propagates (the third test starts it) */
let intact: Mesh;

function text(result: Awaited<ReturnType<Client['callTool']>>): string {
  return (result.content as { type: string; text: string }[]).map((c) => c.text).join('\n');
}

async function mesh(propagation: Record<string, 'all' | 'tracecontext' | 'none'>): Promise<Mesh> {
  const started = await Mesh.start({ propagation });
  meshes.push(started);
  return started;
}

afterAll(async () => {
  await Promise.all(meshes.map((m) => m.stop()));
});

describe('laneway doctor', () => {
  it('names the service that drops baggage (no propagation at all), exit 1', async () => {
    const m = await mesh({ orders: 'none' });
    const out = await runLaneway(['doctor', '--entry', m.entryUrl, '--path', '/checkout', '--server', m.controlPlaneUrl]);
    expect(out.code).toBe(1);
    expect(out.stdout).toContain('default/web received the key');
    expect(out.stdout).toContain('default/orders received the key; its call to default/payments arrived without it: default/orders does not propagate baggage');
    expect(out.stdout).toMatch(/no trace context arrived either/);
    expect(out.stdout).not.toContain('default/payments received the key');
  }, 60_000);

  it('tells a propagator list without baggage apart (trace context arrived), and says which sandbox forks the key reaches', async () => {
    const m = await mesh({ orders: 'tracecontext' });
    const payments = await m.startFork('payments', 'payments-fork');
    const web = await m.startFork('web', 'web-fork');
    await m.applySandbox('pr-5', [web, payments]);
    const report = await runDoctor(new LanewayClient(m.controlPlaneUrl, undefined), { entry: m.entryUrl, path: '/checkout', sandbox: 'pr-5' });
    expect(report.propagates).toBe(false);
    expect(report.chain).toEqual(['default/web', 'default/orders']);
    expect(report.findings).toContainEqual({ kind: 'dropped', from: 'default/orders', to: 'default/payments', traced: true, certain: true });
    expect(report.text).toMatch(/propagators leave out baggage/);
    expect(report.findings).toContainEqual({ kind: 'fork-reached', workload: 'default/web', reached: true });
    expect(report.findings).toContainEqual({ kind: 'fork-reached', workload: 'default/payments', reached: false });
  }, 60_000);

  it('reports the full chain when every service propagates, exit 0; -o json is the report', async () => {
    const m = (intact = await mesh({}));
    const out = await runLaneway(['doctor', '--entry', m.entryUrl, '--server', m.controlPlaneUrl, '-o', 'json']);
    expect(out.code).toBe(0);
    const report = JSON.parse(out.stdout);
    expect(report).toMatchObject({ propagates: true, status: 200, chain: ['default/web', 'default/orders', 'default/payments'] });
    // Probe keys are reserved: a sandbox cannot take one.
    const refused = await call(m.controlPlaneUrl, 'PUT', '/v1/sandboxes/sneaky', { spec: { routingKey: report.key, forks: [{ workload: 'default/web', targets: { '8080': '127.0.0.1:9' } }] } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.field).toBe('spec.routingKey');
  }, 60_000);

  it('says so when no sidecar saw the probe, and refuses bad flags with exit 2', async () => {
    const m = intact;
    // The control plane itself answers, with no sidecar in front: nothing sees the probe.
    const out = await runLaneway(['doctor', '--entry', `${m.controlPlaneUrl}/healthz`, '--server', m.controlPlaneUrl]);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/no sidecar saw the probe/);
    for (const [args, flag] of [[['--server', m.controlPlaneUrl], '--entry'], [['--entry', 'ftp://x', '--server', m.controlPlaneUrl], '--entry'], [['--entry', m.entryUrl, '--path', 'x'], '--path']] as const) {
      const bad = await runLaneway(['doctor', ...args]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain(flag);
    }
  }, 60_000);
});

describe('MCP: propagation_doctor and sandbox_traffic', () => {
  it('an agent finds the lane intact, captures a request into its sandbox and reads it back', async () => {
    const m = intact;
    const client = new Client({ name: 'laneway-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp'], env: { PATH: process.env.PATH ?? '', LANEWAY_URL: m.controlPlaneUrl }, stderr: 'pipe' }));
    try {
      const doctor = text(await client.callTool({ name: 'propagation_doctor', arguments: { entry: m.entryUrl, path: '/checkout' } }));
      expect(doctor).toContain('the key reached every workload that received a call: default/web → default/orders → default/payments');
      const fork = await m.startFork('orders', 'orders-capture');
      const orders = m.service('orders');
      const applied = await call(m.controlPlaneUrl, 'PUT', '/v1/sandboxes/pr-cap', { spec: { capture: {}, forks: [{ workload: orders.workload, targets: { [String(orders.appPort)]: fork.target } }] } });
      expect(applied.status).toBe(201);
      const key = applied.body.status.routingKey as string;
      await waitFor('the route at orders', async () => (await m.routes('orders')).routes.some((r) => r.key === key));
      expect((await m.call(key)).body.path).toEqual(['web', 'orders-capture', 'payments']);
      await waitFor('the capture', async () => text(await client.callTool({ name: 'sandbox_traffic', arguments: { name: 'pr-cap' } })).includes('default/orders  GET /'), 5000);
      const lines = text(await client.callTool({ name: 'sandbox_traffic', arguments: { name: 'pr-cap', status: '2xx' } }));
      expect(lines).toMatch(new RegExp(`default/orders  GET / {2}200  [0-9.]+ ms  -> ${fork.target}`));
      const detail = JSON.parse(text(await client.callTool({ name: 'sandbox_traffic', arguments: { name: 'pr-cap', detail: true } })));
      expect(detail.entries[0].exchange.requestHeaders.baggage).toBe(`laneway=${key}`);
      const missing = await client.callTool({ name: 'sandbox_traffic', arguments: { name: 'nope' } });
      expect(missing.isError).toBe(true);
      expect(text(missing)).toMatch(/LANEWAY_ERR_SANDBOX_NOT_FOUND/);
    } finally {
      await client.close();
    }
  }, 60_000);
});

describe('reading sightings', () => {
  const result = (sightings: ProbeResult['sightings']): ProbeResult => ({
    probe: { id: 'p', key: 'lwprobe1', traceId: 't', until: 0, createdAt: 0, sandbox: null },
    sightings,
    watching: [],
    forks: [],
  });
  const seen = (workload: string, at: number, keyed: boolean, peer = '127.0.0.9', local = '127.0.0.1'): ProbeResult['sightings'][number] => ({
    probe: 'p', workload, at, keyed, traced: false, method: 'GET', path: '/', peer, local,
  });

  it('blames the caller by address when pod addresses tell callers apart (fan-out)', () => {
    // web (127.0.0.1) calls orders (127.0.0.2) and search (127.0.0.3); orders calls payments without the key (pod addresses, only parsed here).
    const report = analyze(
      result([seen('a/web', 1, true, '127.9.9.9', '127.0.0.1'), seen('a/orders', 2, true, '127.0.0.1', '127.0.0.2'), seen('a/search', 3, true, '127.0.0.1', '127.0.0.3'), seen('a/payments', 4, false, '127.0.0.2', '127.0.0.4')]),
      'http://x',
      200,
    );
    expect(report.findings).toContainEqual({ kind: 'dropped', from: 'a/orders', to: 'a/payments', traced: false, certain: true });
  });

  it('ignores unkeyed requests that arrived before the probe entered the mesh', () => {
    const report = analyze(result([seen('a/payments', 1, false), seen('a/web', 2, true)]), 'http://x', 200);
    expect(report.propagates).toBe(true);
  });
});
