// The sandbox and workload API through Fastify inject: CRUD, per-field validation, conflicts, idempotency, revisions, limits.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { validateSnapshot } from '../../model/route-table.js';
import { buildServer } from '../../cli/server.js';
import { configWith } from '../../control-plane/config.js';
import { removeTempDirs, spec } from './helpers.js';
import { useStores } from './stores.js';

describe.each(useStores())('$name store', (store) => {
  let app: FastifyInstance;
  const apps: FastifyInstance[] = [];

  // Probing off: these specs name hosts like 10.0.0.7 that are not on this machine, and a test never sends
  // a packet off it (the prober's own behaviour is tested in probe.test.ts against loopback targets).
  async function fresh(overrides = {}): Promise<FastifyInstance> {
    const built = await buildServer(configWith({ ...store.config(store.fresh()), probeIntervalMs: 0, ...overrides }));
    apps.push(built);
    await built.ready();
    return built;
  }

  async function put(name: string, body: unknown, target = app) {
    const res = await target.inject({ method: 'PUT', url: `/v1/sandboxes/${name}`, payload: body as object });
    return { status: res.statusCode, body: res.json(), headers: res.headers };
  }

  async function get(url: string, target = app) {
    const res = await target.inject({ method: 'GET', url });
    return { status: res.statusCode, body: res.json(), headers: res.headers };
  }

  beforeEach(async () => {
    app = await fresh();
  });

  afterAll(async () => {
    for (const a of apps) await a.close();
    removeTempDirs();
  });

  describe('CRUD', () => {
    it('creates, reads, lists, replaces and deletes a sandbox', async () => {
      const created = await put('pr-42', { spec: spec(['default/orders'], 'orders-pr42.default.svc:8080', { ttl: '2h', labels: { team: 'checkout' } }) });
      expect(created.status).toBe(201);
      expect(created.headers['laneway-apply']).toBe('created');
      expect(created.body.name).toBe('pr-42');
      expect(created.body.spec.forks).toEqual([{ workload: 'default/orders', targets: { '8080': 'orders-pr42.default.svc:8080' } }]);
      expect(created.body.spec.labels).toEqual({ team: 'checkout' });
      const status = created.body.status;
      expect(status.revision).toBe(1);
      expect(status.phase).toBe('Pending');
      expect(status.targets[0]).toMatchObject({ workload: 'default/orders', port: '8080', target: 'orders-pr42.default.svc:8080', ready: false });
      expect(Date.parse(status.expiresAt) - Date.parse(status.updatedAt)).toBe(2 * 3600_000);

      const fetched = await get('/v1/sandboxes/pr-42');
      expect(fetched.status).toBe(200);
      expect(fetched.body.status.routingKey).toBe(status.routingKey);

      const replaced = await put('pr-42', { spec: spec(['default/orders', 'default/payments'], '10.0.0.7:8080') });
      expect(replaced.status).toBe(200);
      expect(replaced.headers['laneway-apply']).toBe('configured');
      expect(replaced.body.status.revision).toBe(2);
      expect(replaced.body.status.createdAt).toBe(status.createdAt);
      expect(replaced.body.status.routingKey).toBe(status.routingKey); // a generated key survives re-applies
      expect(replaced.body.status.expiresAt).toBeNull();

      await put('pr-7', { spec: spec(['default/orders']) });
      const list = await get('/v1/sandboxes');
      expect(list.body.revision).toBe(3);
      expect(list.body.items.map((s: { name: string }) => s.name)).toEqual(['pr-42', 'pr-7']);

      const deleted = await app.inject({ method: 'DELETE', url: '/v1/sandboxes/pr-42' });
      expect(deleted.statusCode).toBe(200);
      expect(deleted.json()).toEqual({ name: 'pr-42', revision: 4 });
      expect((await get('/v1/sandboxes/pr-42')).status).toBe(404);
      expect((await get('/v1/sandboxes')).body.items).toHaveLength(1);
    });

    it('404s unknown sandboxes and endpoints with a code', async () => {
      const missing = await get('/v1/sandboxes/nope');
      expect(missing.status).toBe(404);
      expect(missing.body.error).toEqual({ code: 'LANEWAY_ERR_SANDBOX_NOT_FOUND', message: 'sandbox nope does not exist', field: 'name' });
      const del = await app.inject({ method: 'DELETE', url: '/v1/sandboxes/nope' });
      expect(del.statusCode).toBe(404);
      const route = await get('/v2/whatever');
      expect(route.status).toBe(404);
      expect(route.body.error.code).toBe('LANEWAY_ERR_ROUTE_NOT_FOUND');
    });

    it('generates unguessable routing keys: 20 lowercase base32 characters, all different', async () => {
      const keys = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const res = await put(`s${i}`, { spec: spec([`ns/w${i}`]) });
        expect(res.body.status.routingKey).toMatch(/^[a-z2-7]{20}$/);
        keys.add(res.body.status.routingKey);
      }
      expect(keys.size).toBe(20);
    });

    it('keeps a client-supplied routing key, and accepts a fetched sandbox back (status ignored)', async () => {
      const res = await put('pr-1', { name: 'pr-1', spec: spec(['default/orders'], '127.0.0.1:9', { routingKey: 'k7f3q2' }) });
      expect(res.body.status.routingKey).toBe('k7f3q2');
      const fetched = (await get('/v1/sandboxes/pr-1')).body;
      const again = await put('pr-1', fetched);
      expect(again.status).toBe(200);
      expect(again.headers['laneway-apply']).toBe('unchanged');
    });
  });

  describe('idempotent apply and revisions', () => {
    it('the same spec twice changes nothing: same revision, no workload touched', async () => {
      const body = { spec: spec(['default/orders'], '127.0.0.1:9', { routingKey: 'same' }) };
      const first = await put('pr-1', body);
      const second = await put('pr-1', body);
      expect(second.status).toBe(200);
      expect(second.headers['laneway-apply']).toBe('unchanged');
      expect(second.body.status.revision).toBe(first.body.status.revision);
      expect(second.body.status.updatedAt).toBe(first.body.status.updatedAt);
      expect((await get('/v1/sandboxes')).body.revision).toBe(1);
      expect((await get('/v1/workloads/default/orders/routes')).body.revision).toBe(1);
    });

    it('re-applying an identical spec renews the TTL lease without a revision', async () => {
      const body = { spec: spec(['default/orders'], '127.0.0.1:9', { ttl: '1h' }) };
      const first = await put('pr-1', body);
      await new Promise((r) => setTimeout(r, 20));
      const second = await put('pr-1', body);
      expect(second.headers['laneway-apply']).toBe('unchanged');
      expect(second.body.status.revision).toBe(first.body.status.revision);
      expect(Date.parse(second.body.status.expiresAt)).toBeGreaterThan(Date.parse(first.body.status.expiresAt));
    });

    it('one global revision; a workload carries the revision of the last change that touched it', async () => {
      await put('a', { spec: spec(['ns/orders']) }); // rev 1: orders
      await put('b', { spec: spec(['ns/payments']) }); // rev 2: payments
      await put('a', { spec: spec(['ns/orders'], '127.0.0.1:9', { labels: { x: 'y' } }) }); // rev 3: labels only, no route change
      const orders = (await get('/v1/workloads/ns/orders/routes')).body;
      const payments = (await get('/v1/workloads/ns/payments/routes')).body;
      expect(orders.revision).toBe(1);
      expect(payments.revision).toBe(2);
      expect((await get('/v1/sandboxes/a')).body.status.revision).toBe(3);
      await app.inject({ method: 'DELETE', url: '/v1/sandboxes/b' }); // rev 4
      expect((await get('/v1/workloads/ns/payments/routes')).body).toEqual({ workload: 'ns/payments', revision: 4, routes: [] });
      expect((await get('/v1/workloads/ns/orders/routes')).body.revision).toBe(1);
    });
  });

  describe('snapshot endpoint', () => {
    it('keeps a fork target\'s declared protocol (h2c://, http://) through the API into the route table', async () => {
      const res = await put('pr-3', { spec: { routingKey: 'proto', forks: [{ workload: 'default/orders', targets: { '8080': 'h2c://10.0.0.3:8080', '9090': 'http://10.0.0.3:9090' } }] } });
      expect(res.status).toBeLessThan(300);
      const routes = (await get('/v1/workloads/default/orders/routes')).body.routes;
      expect(routes).toEqual([{ key: 'proto', sandbox: 'pr-3', targets: { '8080': 'h2c://10.0.0.3:8080', '9090': 'http://10.0.0.3:9090' } }]);
      expect(() => validateSnapshot({ workload: 'default/orders', revision: 1, routes })).not.toThrow();
    });

    it('serves exactly the sidecar routes-file format (validateSnapshot accepts it), sorted by key', async () => {
      await put('pr-2', { spec: { routingKey: 'zz', forks: [{ workload: 'default/orders', targets: { '8080': '10.0.0.2:8080', '9090': '[::1]:9090' } }] } });
      await put('pr-1', { spec: spec(['default/orders', 'default/payments'], '10.0.0.1:8080', { routingKey: 'aa' }) });
      const res = await get('/v1/workloads/default/orders/routes');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({
        workload: 'default/orders',
        revision: 2,
        routes: [
          { key: 'aa', sandbox: 'pr-1', targets: { '8080': '10.0.0.1:8080' } },
          { key: 'zz', sandbox: 'pr-2', targets: { '8080': '10.0.0.2:8080', '9090': '[::1]:9090' } },
        ],
      });
      expect(() => validateSnapshot(res.body)).not.toThrow();
    });

    it('an untouched workload is an empty table at revision 0, not a 404', async () => {
      expect((await get('/v1/workloads/prod/unknown/routes')).body).toEqual({ workload: 'prod/unknown', revision: 0, routes: [] });
    });

    it('rejects bad workload names naming the parameter', async () => {
      const res = await get('/v1/workloads/Bad_NS/orders/routes');
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe('namespace');
    });
  });

  describe('validation: 400 naming the field', () => {
    const cases: [string, unknown, string][] = [
      ['missing spec', {}, 'spec'],
      ['unknown top-level field', { spec: spec(['a/b']), metadata: {} }, 'metadata'],
      ['unknown spec field', { spec: { ...spec(['a/b']), fork: [] } }, 'spec.fork'],
      ['missing forks', { spec: { ttl: '1h' } }, 'spec.forks'],
      ['empty forks', { spec: { forks: [] } }, 'spec.forks'],
      ['fork without targets', { spec: { forks: [{ workload: 'a/b' }] } }, 'spec.forks[0].targets'],
      ['bad workload', { spec: { forks: [{ workload: 'orders', targets: { '8080': 'x:1' } }] } }, 'spec.forks[0].workload'],
      ['uppercase workload', { spec: { forks: [{ workload: 'Default/orders', targets: { '8080': 'x:1' } }] } }, 'spec.forks[0].workload'],
      ['no ports', { spec: { forks: [{ workload: 'a/b', targets: {} }] } }, 'spec.forks[0].targets'],
      ['port out of range', { spec: { forks: [{ workload: 'a/b', targets: { '70000': 'x:1' } }] } }, 'spec.forks[0].targets.70000'],
      ['port not a number', { spec: { forks: [{ workload: 'a/b', targets: { http: 'x:1' } }] } }, 'spec.forks[0].targets.http'],
      ['target without port', { spec: { forks: [{ workload: 'a/b', targets: { '8080': 'orders' } }] } }, 'spec.forks[0].targets.8080'],
      ['target with an unknown scheme', { spec: { forks: [{ workload: 'a/b', targets: { '8080': 'https://x:1' } }] } }, 'spec.forks[0].targets.8080'],
      ['target written as a lane', { spec: { forks: [{ workload: 'a/b', targets: { '8080': 'lane://x:1' } }] } }, 'spec.forks[0].targets.8080'],
      ['target not a string', { spec: { forks: [{ workload: 'a/b', targets: { '8080': 8080 } }] } }, 'spec.forks[0].targets.8080'],
      ['second fork bad', { spec: { forks: [{ workload: 'a/b', targets: { '1': 'x:1' } }, { workload: 'a/c', targets: { '1': 'x' } }] } }, 'spec.forks[1].targets.1'],
      ['key with space', { spec: { ...spec(['a/b']), routingKey: 'a b' } }, 'spec.routingKey'],
      ['key too long', { spec: { ...spec(['a/b']), routingKey: 'k'.repeat(65) } }, 'spec.routingKey'],
      ['key with comma (would break baggage)', { spec: { ...spec(['a/b']), routingKey: 'a,b' } }, 'spec.routingKey'],
      ['ttl garbage', { spec: { ...spec(['a/b']), ttl: 'soon' } }, 'spec.ttl'],
      ['ttl without unit', { spec: { ...spec(['a/b']), ttl: '3600' } }, 'spec.ttl'],
      ['ttl too short', { spec: { ...spec(['a/b']), ttl: '10ms' } }, 'spec.ttl'],
      ['ttl a number', { spec: { ...spec(['a/b']), ttl: 3600 } }, 'spec.ttl'],
      ['label value too long', { spec: { ...spec(['a/b']), labels: { team: 'x'.repeat(64) } } }, 'spec.labels.team'],
      ['label key bad', { spec: { ...spec(['a/b']), labels: { 'bad key': 'x' } } }, 'spec.labels.bad key'],
      ['body name differs from URL', { name: 'other', spec: spec(['a/b']) }, 'name'],
    ];
    it.each(cases)('%s → %s', async (_label, body, field) => {
      const res = await put('pr-1', body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('LANEWAY_ERR_INVALID_FIELD');
      expect(res.body.error.field).toBe(field);
      expect(res.body.error.message.startsWith(`${field}: `)).toBe(true);
      expect((await get('/v1/sandboxes')).body.revision).toBe(0); // nothing was written
    });

    it('rejects an invalid sandbox name in the URL', async () => {
      const res = await put('PR_42', { spec: spec(['a/b']) });
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe('name');
    });

    it('malformed JSON, wrong media type and oversize bodies are 400/415/413, never 500', async () => {
      const bad = await app.inject({ method: 'PUT', url: '/v1/sandboxes/x', headers: { 'content-type': 'application/json' }, payload: '{"spec":' });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.code).toBe('LANEWAY_ERR_INVALID_BODY');
      const yaml = await app.inject({ method: 'PUT', url: '/v1/sandboxes/x', headers: { 'content-type': 'application/yaml' }, payload: 'spec: {}' });
      expect(yaml.statusCode).toBe(415);
      expect(yaml.json().error.code).toBe('LANEWAY_ERR_UNSUPPORTED_MEDIA_TYPE');
      const big = await app.inject({
        method: 'PUT',
        url: '/v1/sandboxes/x',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ spec: spec(['a/b'], '127.0.0.1:9', { labels: { pad: 'x'.repeat(70_000) } }) }),
      });
      expect(big.statusCode).toBe(413);
      expect(big.json().error.code).toBe('LANEWAY_ERR_BODY_TOO_LARGE');
      const array = await app.inject({ method: 'PUT', url: '/v1/sandboxes/x', payload: [] as unknown as object });
      expect(array.statusCode).toBe(400);
    });

    it('survives a seeded fuzz of random bodies without a 5xx', async () => {
      let seed = 42;
      const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const atoms: unknown[] = [null, 0, -1, 1e308, '', 'x', 'a/b', '127.0.0.1:9', '[::1]:1', true, [], {}, 'k'.repeat(300)];
      const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
      const value = (depth: number): unknown => {
        const r = rand();
        if (depth > 3 || r < 0.4) return pick(atoms);
        if (r < 0.6) return Array.from({ length: Math.floor(rand() * 3) }, () => value(depth + 1));
        const keys = ['spec', 'forks', 'workload', 'targets', '8080', 'ttl', 'labels', 'routingKey', 'name', '0'];
        return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [pick(keys), value(depth + 1)]));
      };
      for (let i = 0; i < 300; i++) {
        const body = rand() < 0.5 ? { spec: value(0) } : value(0);
        const res = await app.inject({ method: 'PUT', url: '/v1/sandboxes/fuzz', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
        expect(res.statusCode, JSON.stringify(body)).toBeLessThan(500);
        if (res.statusCode >= 400) expect(res.json().error.code).toMatch(/^LANEWAY_ERR_/);
      }
    });
  });

  describe('conflicts: 409 naming the other sandbox', () => {
    it('two sandboxes may not share a routing key', async () => {
      await put('pr-1', { spec: spec(['a/b'], '127.0.0.1:9', { routingKey: 'shared' }) });
      const res = await put('pr-2', { spec: spec(['a/c'], '127.0.0.1:9', { routingKey: 'shared' }) });
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('LANEWAY_ERR_KEY_CONFLICT');
      expect(res.body.error.field).toBe('spec.routingKey');
      expect(res.body.error.message).toContain('pr-1');
      expect((await get('/v1/sandboxes/pr-2')).status).toBe(404);
    });

    it('a key freed by a delete or a key change can be taken', async () => {
      await put('pr-1', { spec: spec(['a/b'], '127.0.0.1:9', { routingKey: 'k1' }) });
      await put('pr-1', { spec: spec(['a/b'], '127.0.0.1:9', { routingKey: 'k2' }) });
      expect((await put('pr-2', { spec: spec(['a/b'], '127.0.0.1:9', { routingKey: 'k1' }) })).status).toBe(201);
      await app.inject({ method: 'DELETE', url: '/v1/sandboxes/pr-1' });
      expect((await put('pr-3', { spec: spec(['a/b'], '127.0.0.1:9', { routingKey: 'k2' }) })).status).toBe(201);
    });

    it('one sandbox may not fork the same workload twice', async () => {
      const res = await put('pr-1', { spec: spec(['a/b', 'a/c', 'a/b']) });
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('LANEWAY_ERR_WORKLOAD_CONFLICT');
      expect(res.body.error.field).toBe('spec.forks[2].workload');
      expect(res.body.error.message).toContain('pr-1');
      expect(res.body.error.message).toContain('spec.forks[0]');
    });
  });

  describe('operational endpoints', () => {
    it('/healthz, /metrics and /openapi.json', async () => {
      await put('pr-1', { spec: spec(['a/b']) });
      const health = await get('/healthz');
      expect(health.body).toEqual({ status: 'ok', revision: 1, sandboxes: 1, watchers: 0, store: store.name, leader: health.body.leader });
      if (store.name === 'sqlite') expect(health.body.leader).toBe(true); // on etcd: once elected
      const metrics = await app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
      expect(metrics.body).toMatch(/^laneway_cp_sandboxes 1$/m);
      expect(metrics.body).toMatch(/^laneway_cp_changes_total\{op="apply"\} 1$/m);
      expect(metrics.body).toMatch(/^laneway_cp_push_duration_seconds_count 1$/m);
      const doc = (await get('/openapi.json')).body;
      expect(doc.openapi).toBe('3.1.0');
      for (const path of ['/v1/sandboxes/{name}', '/v1/sandboxes', '/v1/workloads/{namespace}/{name}/routes', '/v1/workloads/{namespace}/{name}/routes/watch', '/healthz', '/metrics']) {
        expect(doc.paths[path], path).toBeDefined();
      }
      const putOp = doc.paths['/v1/sandboxes/{name}'].put;
      expect(putOp.requestBody.content['application/json'].schema.properties.spec.required).toEqual(['forks']);
      expect(Object.keys(putOp.responses)).toEqual(expect.arrayContaining(['200', '201', '4XX']));
    });
  });

  describe('allow-targets governance', () => {
    it('rejects targets outside the patterns with 403 and the reason, accepts globs and CIDRs', async () => {
      const governed = await fresh({ allowTargets: ['*.default.svc', '10.0.0.0/8', 'fd00::/8'] });
      const ok1 = await put('a', { spec: spec(['a/b'], 'orders-pr42.default.svc:8080') }, governed);
      expect(ok1.status).toBe(201);
      const ok2 = await put('b', { spec: spec(['a/b'], '10.1.2.3:8080') }, governed);
      expect(ok2.status).toBe(201);
      const ok3 = await put('c', { spec: spec(['a/b'], '[fd00::1]:8080') }, governed);
      expect(ok3.status).toBe(201);
      const denied = await put('d', { spec: { forks: [{ workload: 'a/b', targets: { '8080': 'x.default.svc:1', '9090': 'evil.example.com:9090' } }] } }, governed);
      expect(denied.status).toBe(403);
      expect(denied.body.error.code).toBe('LANEWAY_ERR_TARGET_NOT_ALLOWED');
      expect(denied.body.error.field).toBe('spec.forks[0].targets.9090');
      expect(denied.body.error.message).toContain('evil.example.com:9090');
      const ip = await put('e', { spec: spec(['a/b'], '11.0.0.1:80') }, governed);
      expect(ip.status).toBe(403);
      // The glob's dot is literal: "xdefault.svc" must not match "*.default.svc" by accident.
      expect((await put('f', { spec: spec(['a/b'], 'default.svc:80') }, governed)).status).toBe(403);
      expect((await get('/v1/sandboxes', governed)).body.items).toHaveLength(3);
    });
  });
});
