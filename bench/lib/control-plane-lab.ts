// The parts of a suite that runs against a real control plane: the control plane, a sandbox, a watching sidecar, and the wait for its routes.
import { join } from 'node:path';
import { request } from 'undici';
import { WORKLOAD } from './fixtures.js';
import { CLI, freePort, httpReady, startChild, type Child } from './procs.js';

/** `laneway control-plane` on a free loopback port, data in `dir`; `extra` flags appended. */
export async function startControlPlane(dir: string, extra: readonly string[] = []): Promise<{ child: Child; url: string }> {
  const { child, value } = await startChild(
    'laneway control-plane',
    process.execPath,
    [CLI, 'control-plane', '--listen', '127.0.0.1:0', '--data', join(dir, 'data'), '--probe-interval', '0', '--log-level', 'warn', ...extra],
    (out) => /listening on (http:\/\/\S+:\d+)/.exec(out)?.[1],
  );
  return { child, url: value };
}

/** PUT a sandbox of WORKLOAD with `spec` fields besides its forks; throws unless created. */
export async function createSandbox(cpUrl: string, name: string, targets: Record<string, string>, spec: Record<string, unknown> = {}): Promise<void> {
  const put = await request(`${cpUrl}/v1/sandboxes/${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ spec: { ...spec, forks: [{ workload: WORKLOAD, targets }] } }),
  });
  await put.body.text();
  if (put.statusCode !== 201) throw new Error(`creating sandbox ${name} answered ${put.statusCode}`);
}

/** A sidecar for WORKLOAD in front of `appPort`, watching the control plane; its listener's URL. */
export async function startWatchingSidecar(appPort: number, cpUrl: string): Promise<{ child: Child; url: string; admin: string }> {
  const port = await freePort();
  const adminPort = await freePort();
  const admin = `http://127.0.0.1:${adminPort}`;
  const { child } = await startChild(
    'laneway sidecar',
    process.execPath,
    [CLI, 'sidecar', '--workload', WORKLOAD, '--port', `${port}:${appPort}`, '--control-plane', cpUrl, '--admin', `127.0.0.1:${adminPort}`, '--log-level', 'warn'],
    () => httpReady(`${admin}/readyz`),
  );
  return { child, url: `http://127.0.0.1:${port}`, admin };
}

/** Waits until the sidecar at `url` routes `key` to an upstream answering `body`. */
export async function waitRouted(url: string, key: string, body: string, label: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await request(url, { headers: { baggage: `laneway=${key}` } });
    if ((await res.body.text()) === body) return;
    if (Date.now() > deadline) throw new Error(`${label}: the sidecar never routed to the fork`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
