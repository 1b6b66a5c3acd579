// A sidecar the control plane refuses (no token, wrong token) says so on /routes and in its log (issue 11 item 11).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startSidecar, type SidecarProcess } from '../helpers/processes.js';
import { poll } from '../../core/poll.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';
import { removeTempDirs, startControlPlane, tempDir, type ControlPlaneProcess } from '../control-plane/helpers.js';

const READER = 'r-0123456789abcdef0123';
let cp: ControlPlaneProcess;
let app: Upstream;
const sidecars: SidecarProcess[] = [];

beforeAll(async () => {
  const dir = tempDir();
  const tokensFile = join(dir, 'tokens');
  writeFileSync(tokensFile, `reader:${READER}\n`);
  cp = await startControlPlane(join(dir, 'data'), ['--tokens-file', tokensFile]);
  app = await startUpstream('baseline');
});

afterAll(async () => {
  await Promise.all(sidecars.map((s) => s.stop()));
  await cp?.stop();
  await app?.close();
  removeTempDirs();
});

async function routes(admin: string): Promise<{ loaded: boolean; lastError: string | null }> {
  return (await (await request(`${admin}/routes`)).body.json()) as { loaded: boolean; lastError: string | null };
}

/** The last value read, once `ok` holds or after `timeoutMs` (the assertion then shows what it was). */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  return (await poll(read, ok, { timeoutMs, intervalMs: 50 })).value as T;
}

async function sidecar(token?: string): Promise<SidecarProcess> {
  const extra = ['--control-plane', cp.url, '--log-level', 'info', ...(token === undefined ? [] : ['--token', token])];
  const s = await startSidecar({ appPort: app.port, extra });
  sidecars.push(s);
  return s;
}

describe('a sidecar the control plane refuses', () => {
  it.each([
    ['without a token', undefined],
    ['with a wrong token', 'r-wrongwrongwrongwrong00'],
  ])('%s: /routes names the 401 and its code, one warn line says so, readiness stays false', async (_label, token) => {
    const s = await sidecar(token);
    const info = await eventually(() => routes(s.admin), (r) => r.lastError !== null);
    expect(info.loaded).toBe(false);
    expect(info.lastError).toMatch(/401/);
    expect(info.lastError).toContain('LANEWAY_ERR_UNAUTHENTICATED');
    expect((await request(`${s.admin}/readyz`).then((r) => (r.body.dump(), r.statusCode)))).toBe(503);
    // Several retries happen within a second (backoff starts at 200 ms), but the same refusal is logged once.
    await new Promise((r) => setTimeout(r, 1500));
    const warns = s.output().split('\n').filter((l) => l.includes('"level":40') && l.includes('401'));
    expect(warns.length).toBe(1);
    expect(warns[0]).toContain('--token');
  });

  it('with the right token it loads, and lastError clears', async () => {
    const s = await sidecar(READER);
    const info = await eventually(() => routes(s.admin), (r) => r.loaded);
    expect(info.loaded).toBe(true);
    expect(info.lastError).toBeNull();
  });
});
