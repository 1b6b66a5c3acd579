// Fork targets refused by default (metadata, link-local, unspecified, the control plane itself) and probe reasons readers may not see (issue 11 item 13).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { forbiddenTarget } from '../../model/target-guard.js';
import { buildServer } from '../../cli/server.js';
import { configWith } from '../../control-plane/config.js';
import { NetnsNode, netnsSkipReason } from '../deploy/netns.js';
import { call, listenApp, removeTempDirs, spec, tempDir } from './helpers.js';

const DIST = fileURLToPath(new URL('../../dist', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/apply-targets.mjs', import.meta.url));
const apps: FastifyInstance[] = [];
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  removeTempDirs();
});

describe('forbiddenTarget (pure: no I/O)', () => {
  const self = [{ host: '127.0.0.1', port: 7070 }, { host: '10.0.0.5', port: 9443 }];
  it.each([
    ['169.254.169.254', 80, 'a cloud instance-metadata address'],
    ['[fd00:ec2::254]', 80, 'a cloud instance-metadata address'],
    ['169.254.170.2', 80, 'a cloud instance-metadata address'],
    ['metadata.google.internal', 80, 'a cloud instance-metadata address'],
    ['METADATA.google.internal.', 80, 'a cloud instance-metadata address'],
    ['metadata', 80, 'a cloud instance-metadata address'],
    ['169.254.1.2', 8080, 'a link-local address'],
    ['[fe80::1]', 8080, 'a link-local address'],
    ['[::ffff:169.254.169.254]', 80, 'a cloud instance-metadata address'],
    ['0.0.0.0', 8080, 'the unspecified address'],
    ['[::]', 8080, 'the unspecified address'],
    ['127.0.0.1', 7070, "the control plane's own listener"],
    ['localhost', 7070, "the control plane's own listener"],
    ['10.0.0.5', 9443, "the control plane's own listener"],
  ])('%s:%i → %s', (host, port, reason) => {
    expect(forbiddenTarget(host, port, self)).toBe(reason);
  });

  it.each([
    ['127.0.0.1', 7071],
    ['10.0.0.5', 7070],
    ['orders-v2.default.svc', 8080],
    ['10.1.2.3', 8080],
    ['[fd00::1]', 8080],
    ['metadata-service.default.svc', 80],
  ])('%s:%i is allowed', (host, port) => {
    expect(forbiddenTarget(host, port, self)).toBeNull();
  });
});

describe('the API refuses them (control plane and its prober inside a namespace with only lo)', () => {
  const skip = netnsSkipReason();
  it.skipIf(skip !== null)(`metadata, link-local and unspecified targets → 403 naming the field; an explicit --allow-targets entry allows one${skip ? ` (skipped: ${skip})` : ''}`, async () => {
    const node = new NetnsNode();
    try {
      const run = async (allow: string, targets: string[]) => {
        const res = await node.exec(node.node, process.execPath, [FIXTURE, DIST, allow, ...targets]);
        expect(res.code, res.stderr).toBe(0);
        return res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { target: string; status: number; code: string | null; field: string | null; message: string | null });
      };
      const refused = await run('-', ['169.254.169.254:80', '[fd00:ec2::254]:80', 'metadata.google.internal:80', '169.254.10.10:8080', '0.0.0.0:8080']);
      for (const r of refused) {
        expect(r, r.target).toMatchObject({ status: 403, code: 'LANEWAY_ERR_TARGET_NOT_ALLOWED', field: 'spec.forks[0].targets.8080' });
        expect(r.message).toContain('--allow-targets');
      }
      const allowed = await run('169.254.169.254,*.default.svc', ['169.254.169.254:80', 'orders.default.svc:80', '169.254.10.10:8080']);
      expect(allowed.map((r) => r.status)).toEqual([201, 201, 403]);
    } finally {
      await node.destroy();
    }
  });
});

describe('the control plane as a target', () => {
  it("a fork pointing at the control plane's own port is refused; another loopback port is not", async () => {
    const { app, url } = await listenApp();
    apps.push(app);
    const port = Number(new URL(url).port);
    const own = await call(url, 'PUT', '/v1/sandboxes/self', { spec: spec(['a/b'], `127.0.0.1:${port}`) });
    expect(own.status).toBe(403);
    expect(own.body.error.message).toContain("the control plane's own listener");
    const other = await call(url, 'PUT', '/v1/sandboxes/other', { spec: spec(['a/b'], `127.0.0.1:${port === 65535 ? 1 : port + 1}`) });
    expect(other.status).toBe(201);
  });
});

describe('probe reasons', () => {
  const WRITER = 'w-0123456789abcdef0123';
  const READER = 'r-0123456789abcdef0123';

  it('writers see why a target is not ready; readers only that it is not', async () => {
    const dir = tempDir();
    const tokensFile = join(dir, 'tokens');
    writeFileSync(tokensFile, `writer:${WRITER}\nreader:${READER}\n`);
    const app = await buildServer(configWith({ dataDir: dir, tokensFile, probeIntervalMs: 100 }));
    apps.push(app);
    await app.ready();
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    // Port 9 (discard) on loopback: nothing listens there in a test sandbox, so the probe is refused.
    const put = await app.inject({ method: 'PUT', url: '/v1/sandboxes/pr-1', headers: auth(WRITER), payload: { spec: spec(['a/b'], '127.0.0.1:9') } });
    expect(put.statusCode).toBe(201);
    const reasonFor = async (token: string, url = '/v1/sandboxes/pr-1') => {
      const body = (await app.inject({ method: 'GET', url, headers: auth(token) })).json();
      return (body.items?.[0] ?? body).status.targets[0].reason as string;
    };
    const deadline = Date.now() + 10_000;
    while ((await reasonFor(WRITER)) === 'not probed yet' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await reasonFor(WRITER)).toMatch(/ECONNREFUSED/);
    expect(await reasonFor(READER)).toBe('not ready');
    expect(await reasonFor(READER, '/v1/sandboxes')).toBe('not ready');
  });
});
