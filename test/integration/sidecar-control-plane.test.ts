// A real sidecar subscribed to a real control plane: live pushes, fail-static while it is down, resync, and the routes cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { freePort, startLaneway, startSidecar, type SidecarProcess, type Started } from '../helpers/processes.js';
import { until as pollUntil } from '../../core/poll.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';

const dir = mkdtempSync(join(tmpdir(), 'laneway-int-'));
const dataDir = join(dir, 'data');
const cacheFile = join(dir, 'cache', 'routes.json');
let cpPort: number;
let cp: Started;
let cpUrl: string;
let baseline: Upstream;
let fork: Upstream;
let fork2: Upstream;
let sidecar: SidecarProcess;

async function startControlPlane(): Promise<Started> {
  return startLaneway(['control-plane', '--listen', `127.0.0.1:${cpPort}`, '--data', dataDir, '--log-level', 'warn'], /listening on http:\/\//);
}

async function apply(name: string, forkPort: number): Promise<string> {
  const res = await request(`${cpUrl}/v1/sandboxes/${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ spec: { forks: [{ workload: 'default/orders', targets: { [String(baseline.port)]: `127.0.0.1:${forkPort}` } }] } }),
  });
  const body = (await res.body.json()) as { status: { routingKey: string } };
  expect(res.statusCode).toBeLessThan(300);
  return body.status.routingKey;
}

async function servedBy(key: string | undefined, port = sidecar.port): Promise<string> {
  const res = await request(`http://127.0.0.1:${port}/`, { headers: key ? { baggage: `laneway=${key}` } : {} });
  const body = (await res.body.json()) as { name?: string; error?: { code: string } };
  return body.name ?? body.error?.code ?? `status ${res.statusCode}`;
}

/** Milliseconds until `check` held (polled every `stepMs`: push latency is what some tests measure). */
async function until(check: () => Promise<boolean>, timeoutMs = 5000, stepMs = 2): Promise<number> {
  const started = performance.now();
  if (!(await pollUntil(check, { timeoutMs, intervalMs: stepMs }))) throw new Error('condition not met in time');
  return performance.now() - started;
}

async function routesInfo(admin: string): Promise<Record<string, unknown>> {
  return (await (await request(`${admin}/routes`)).body.json()) as Record<string, unknown>;
}

beforeAll(async () => {
  cpPort = await freePort();
  cpUrl = `http://127.0.0.1:${cpPort}`;
  cp = await startControlPlane();
  baseline = await startUpstream('baseline');
  fork = await startUpstream('fork');
  fork2 = await startUpstream('fork2');
  sidecar = await startSidecar({ appPort: baseline.port, extra: ['--control-plane', cpUrl, '--routes-cache', cacheFile] });
  await until(async () => (await request(`${sidecar.admin}/readyz`).then((r) => (r.body.dump(), r.statusCode))) === 200);
});

afterAll(async () => {
  await sidecar?.stop();
  await cp?.stop();
  await Promise.all([baseline?.close(), fork?.close(), fork2?.close()]);
});

describe('sidecar ← control plane', () => {
  let key1: string;

  it('routes to a sandbox milliseconds after it is applied', async () => {
    const t0 = performance.now();
    key1 = await apply('pr-1', fork.port);
    const applied = performance.now() - t0;
    const delay = await until(async () => (await servedBy(key1)) === 'fork');
    // Printed for the closing note; the bound is generous because the machine is shared.
    console.log(`apply took ${applied.toFixed(1)} ms; sidecar routed the new key ${delay.toFixed(1)} ms after the PUT returned`);
    expect(delay).toBeLessThan(1000);
    expect(await servedBy(undefined)).toBe('baseline');
    const info = await routesInfo(sidecar.admin);
    expect(info).toMatchObject({ connected: true, source: `control-plane:${cpUrl}` });
  });

  it('keeps routing with the last table while the control plane is down (fail static)', async () => {
    await cp.stop('SIGKILL');
    await until(async () => (await routesInfo(sidecar.admin)).connected === false);
    expect(await servedBy(key1)).toBe('fork');
    expect(await servedBy(undefined)).toBe('baseline');
    await new Promise((r) => setTimeout(r, 300));
    const info = await routesInfo(sidecar.admin);
    expect(Number(info.staleSeconds)).toBeGreaterThan(0.2);
    const ready = await request(`${sidecar.admin}/readyz`);
    await ready.body.dump();
    expect(ready.statusCode).toBe(200);
  });

  it('resyncs when the control plane comes back', async () => {
    cp = await startControlPlane();
    await until(async () => (await routesInfo(sidecar.admin)).connected === true, 15_000, 50);
    const key2 = await apply('pr-2', fork2.port);
    await until(async () => (await servedBy(key2)) === 'fork2');
    expect(await servedBy(key1)).toBe('fork');
    const del = await request(`${cpUrl}/v1/sandboxes/pr-1`, { method: 'DELETE' });
    await del.body.dump();
    await until(async () => (await servedBy(key1)) === 'baseline');
    expect(await servedBy(key2)).toBe('fork2');
  });

  it('a restarted sidecar routes from its cache while the control plane is unreachable', async () => {
    await until(async () => existsSync(cacheFile) && readFileSync(cacheFile, 'utf8').includes('pr-2'));
    await cp.stop('SIGKILL');
    const key2 = (JSON.parse(readFileSync(cacheFile, 'utf8')) as { routes: { key: string; sandbox: string }[] }).routes.find((r) => r.sandbox === 'pr-2')!.key;
    const restarted = await startSidecar({ appPort: baseline.port, extra: ['--control-plane', cpUrl, '--routes-cache', cacheFile] });
    try {
      const ready = await request(`${restarted.admin}/readyz`);
      await ready.body.dump();
      expect(ready.statusCode).toBe(200);
      expect(await servedBy(key2, restarted.port)).toBe('fork2');
      expect((await routesInfo(restarted.admin)).source).toBe(`cache:${cacheFile}`);
    } finally {
      await restarted.stop();
    }
  });
});
