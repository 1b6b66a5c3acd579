// Without --policy, server-side plan runs may reach loopback only: the control plane is not an open relay into the cluster.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeTempDirs, spec, startControlPlane, tempDir, type ControlPlaneProcess } from '../control-plane/helpers.js';

let cp: ControlPlaneProcess;

beforeAll(async () => {
  cp = await startControlPlane(tempDir());
  expect((await call(cp.url, 'PUT', '/v1/sandboxes/sb', { spec: spec(['default/orders']) })).status).toBe(201);
});

afterAll(async () => {
  await cp?.stop();
  removeTempDirs();
});

const plan = (url: string) => ({ name: 'probe', version: '1.0.0', steps: [{ id: 'get', http: { url }, assert: [{ status: 200 }] }] });

describe('server-side runs without --policy', () => {
  it('refuses a non-loopback host before sending anything, naming the default policy', async () => {
    expect((await call(cp.url, 'PUT', '/v1/plans/probe', { plan: plan('http://10.255.255.1/internal') })).status).toBe(201);
    const refused = await call(cp.url, 'POST', '/v1/plans/probe/runs', { sandbox: 'sb', wait: true });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('LANEWAY_ERR_POLICY_VIOLATION');
    expect(refused.body.error.message).toContain('built-in default policy');
    expect(refused.body.error.message).toContain('hosts');
  });

  it('allows loopback targets', async () => {
    expect((await call(cp.url, 'PUT', '/v1/plans/local', { plan: { ...plan(`${cp.url}/healthz`), name: 'local' } })).status).toBe(201);
    const ran = await call(cp.url, 'POST', '/v1/plans/local/runs', { sandbox: 'sb', wait: true });
    expect(ran.status).toBe(200);
    expect(ran.body.status).toBe('passed');
  });
});
