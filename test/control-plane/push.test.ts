// The watch stream over real sockets: snapshot then deltas, exact resume with Last-Event-ID, isolation between workloads, heartbeats.
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { RouteTable, validateSnapshot, type RouteSnapshot } from '../../model/route-table.js';
import { call, listenApp as listenOn, removeTempDirs, SseClient, sleep, spec, type SseEvent } from './helpers.js';
import { useStores } from './stores.js';

describe.each(useStores())('$name store', (store) => {
  const listenApp: typeof listenOn = (overrides = {}) => listenOn({ ...store.config(store.fresh()), ...overrides });
  let app: FastifyInstance;
  let url: string;
  const clients: SseClient[] = [];

  async function watch(workload: string, lastEventId?: number | string): Promise<SseClient> {
    const client = await SseClient.connect(url, `/v1/workloads/${workload}/routes/watch`, lastEventId === undefined ? {} : { lastEventId });
    clients.push(client);
    return client;
  }

  /** Applies events the way the sidecar does (proxy/route-table.ts), to check the stream rebuilds the real table. */
  function replay(events: readonly SseEvent[], start?: RouteTable): RouteTable {
    let table = start;
    for (const e of events) {
      if (e.event === 'snapshot') table = RouteTable.fromSnapshot(validateSnapshot(e.data));
      else if (e.event === 'upsert') (table as RouteTable).applyUpsert(e.data);
      else if (e.event === 'delete') (table as RouteTable).applyDelete(e.data);
    }
    return table as RouteTable;
  }

  beforeAll(async () => {
    // A short delta log, so the "too old to resume" path is reachable.
    ({ app, url } = await listenApp({ deltaLogSize: 4, heartbeatIntervalMs: 100 }));
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    await app.close();
    removeTempDirs();
  });

  describe('watch stream', () => {
    it('answers text/event-stream with a snapshot first, then upsert and delete deltas carrying revisions', async () => {
      const w = await watch('s1/orders');
      expect(w.status).toBe(200);
      expect(w.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(w.headers['cache-control']).toContain('no-cache');
      const [snap] = await w.waitEvents(1);
      expect(snap).toMatchObject({ event: 'snapshot', id: '0', data: { workload: 's1/orders', revision: 0, routes: [] } });

      const created = await call(url, 'PUT', '/v1/sandboxes/s1-a', { spec: spec(['s1/orders'], '127.0.0.1:1001', { routingKey: 's1-key' }) });
      const rev1 = created.body.status.revision as number;
      const [, upsert] = await w.waitEvents(2);
      expect(upsert).toMatchObject({
        event: 'upsert',
        id: String(rev1),
        data: { revision: rev1, route: { key: 's1-key', sandbox: 's1-a', targets: { '8080': '127.0.0.1:1001' } } },
      });

      const deleted = await call(url, 'DELETE', '/v1/sandboxes/s1-a');
      const [, , del] = await w.waitEvents(3);
      expect(del).toMatchObject({ event: 'delete', id: String(deleted.body.revision), data: { revision: deleted.body.revision, key: 's1-key' } });
      expect(replay(w.events).size).toBe(0);
    });

    it('a key change is one upsert (the sidecar drops the old key of the same sandbox), a removed fork is a delete', async () => {
      await call(url, 'PUT', '/v1/sandboxes/s2-a', { spec: spec(['s2/orders', 's2/payments'], '127.0.0.1:1002', { routingKey: 'old' }) });
      const orders = await watch('s2/orders');
      const payments = await watch('s2/payments');
      await orders.waitEvents(1);
      await payments.waitEvents(1);

      await call(url, 'PUT', '/v1/sandboxes/s2-a', { spec: spec(['s2/orders', 's2/payments'], '127.0.0.1:1002', { routingKey: 'new' }) });
      await orders.waitEvents(2);
      await payments.waitEvents(2);
      expect(orders.events[1]).toMatchObject({ event: 'upsert', data: { route: { key: 'new', sandbox: 's2-a' } } });
      const table = replay(orders.events);
      expect(table.lookup('old')).toBeUndefined();
      expect(table.lookup('new')?.sandbox).toBe('s2-a');

      await call(url, 'PUT', '/v1/sandboxes/s2-a', { spec: spec(['s2/orders'], '127.0.0.1:1002', { routingKey: 'new' }) });
      await payments.waitEvents(3);
      expect(payments.events[2]).toMatchObject({ event: 'delete', data: { key: 'new' } });
      await sleep(50);
      expect(orders.events).toHaveLength(2); // orders' route did not change: no event
    });

    it('only workloads a change touches get events; a no-op apply sends nothing', async () => {
      const orders = await watch('s3/orders');
      const other = await watch('s3/other');
      await orders.waitEvents(1);
      await other.waitEvents(1);
      const body = { spec: spec(['s3/orders'], '127.0.0.1:1003') };
      await call(url, 'PUT', '/v1/sandboxes/s3-a', body);
      await orders.waitEvents(2);
      await call(url, 'PUT', '/v1/sandboxes/s3-a', body); // identical
      await call(url, 'PUT', '/v1/sandboxes/s3-a', { spec: { ...body.spec, labels: { only: 'labels' } } }); // no route change
      await call(url, 'PUT', '/v1/sandboxes/s3-b', { spec: spec(['s3/orders'], '127.0.0.1:1004') }); // a real change, as a fence
      await orders.waitEvents(3);
      expect(orders.events.map((e) => e.event)).toEqual(['snapshot', 'upsert', 'upsert']);
      expect(orders.events[2]?.data.route.sandbox).toBe('s3-b');
      expect(other.events.map((e) => e.event)).toEqual(['snapshot']);
    });

    it('sends a snapshot to a new watcher that reflects every route, in the sidecar format', async () => {
      await call(url, 'PUT', '/v1/sandboxes/s4-a', { spec: spec(['s4/orders'], '127.0.0.1:1005', { routingKey: 'k-a' }) });
      await call(url, 'PUT', '/v1/sandboxes/s4-b', { spec: spec(['s4/orders'], '[::1]:1006', { routingKey: 'k-b' }) });
      const w = await watch('s4/orders');
      const [snap] = await w.waitEvents(1);
      const snapshot = validateSnapshot(snap?.data) as RouteSnapshot;
      expect(snapshot.routes.map((r) => r.key)).toEqual(['k-a', 'k-b']);
      expect(snap?.id).toBe(String(snapshot.revision));
      expect((await call(url, 'GET', '/v1/workloads/s4/orders/routes')).body).toEqual(snap?.data);
    });

    it('heartbeat comments arrive on an idle stream', async () => {
      const w = await watch('s5/idle');
      await w.until((c) => c.comments >= 2, 2000, 'two heartbeats');
      expect(w.events).toHaveLength(1);
    });

    it('serves HTTP/1.0 clients an unchunked stream', async () => {
      const { port } = new URL(url);
      const socket = connect(Number(port), '127.0.0.1');
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.write('GET /v1/workloads/s7/orders/routes/watch HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n');
      for (let i = 0; i < 100 && !text.includes('event: snapshot'); i++) await sleep(10);
      await call(url, 'PUT', '/v1/sandboxes/s7-a', { spec: spec(['s7/orders'], '127.0.0.1:1007', { routingKey: 's7-key' }) });
      for (let i = 0; i < 100 && !text.includes('event: upsert'); i++) await sleep(10);
      socket.destroy();
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text).not.toMatch(/transfer-encoding: chunked/i);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      expect(body).toMatch(/^id: 0\nevent: snapshot\ndata: \{"workload":"s7\/orders","revision":0,"routes":\[\]\}\n\nid: \d+\nevent: upsert\ndata: \{"revision":\d+,"route":\{"key":"s7-key"/);
    });

    it('rejects a bad workload name before opening a stream', async () => {
      const res = await call(url, 'GET', '/v1/workloads/s6/Not_A_Label/routes/watch');
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe('name');
    });
  });

  describe('resume with Last-Event-ID', () => {
    it('gets exactly the missed deltas: nothing missed, nothing duplicated, no snapshot', async () => {
      const first = await watch('r1/orders');
      await first.waitEvents(1);
      await call(url, 'PUT', '/v1/sandboxes/r1-a', { spec: spec(['r1/orders'], '127.0.0.1:2001') });
      await first.waitEvents(2);
      const seen = first.events[1]?.id as string;
      first.close();

      // While disconnected: an upsert, a key change, a second sandbox, a delete.
      await call(url, 'PUT', '/v1/sandboxes/r1-b', { spec: spec(['r1/orders'], '127.0.0.1:2002', { routingKey: 'rb1' }) });
      await call(url, 'PUT', '/v1/sandboxes/r1-b', { spec: spec(['r1/orders'], '127.0.0.1:2002', { routingKey: 'rb2' }) });
      await call(url, 'PUT', '/v1/sandboxes/unrelated', { spec: spec(['r1/elsewhere']) });
      await call(url, 'DELETE', '/v1/sandboxes/r1-a');

      const resumed = await watch('r1/orders', seen);
      const events = await resumed.waitEvents(3);
      await sleep(50);
      expect(resumed.events.map((e) => e.event)).toEqual(['upsert', 'upsert', 'delete']);
      const ids = events.map((e) => Number(e.id));
      expect(ids.every((id) => id > Number(seen))).toBe(true);
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);
      // Replaying onto the table the client had gives the server's current table.
      const before = replay(first.events);
      const after = replay(resumed.events, before);
      const current = (await call(url, 'GET', '/v1/workloads/r1/orders/routes')).body;
      expect(after.toSnapshot().routes).toEqual(current.routes);
      expect(after.revision).toBe(current.revision);

      // And the resumed stream is live.
      await call(url, 'PUT', '/v1/sandboxes/r1-c', { spec: spec(['r1/orders'], '127.0.0.1:2003') });
      await resumed.waitEvents(4);
      expect(resumed.events[3]?.event).toBe('upsert');
    });

    it('an up-to-date client gets nothing until the next change', async () => {
      await call(url, 'PUT', '/v1/sandboxes/r2-a', { spec: spec(['r2/orders'], '127.0.0.1:2004') });
      const rev = (await call(url, 'GET', '/v1/workloads/r2/orders/routes')).body.revision as number;
      const w = await watch('r2/orders', rev);
      expect(w.status).toBe(200); // headers flushed although no event was due
      await sleep(100);
      expect(w.events).toHaveLength(0);
      await call(url, 'DELETE', '/v1/sandboxes/r2-a');
      const [del] = await w.waitEvents(1);
      expect(del?.event).toBe('delete');
    });

    it('falls back to a fresh snapshot when the deltas are no longer kept, or the id is unknown or garbage', async () => {
      await call(url, 'PUT', '/v1/sandboxes/r3-a', { spec: spec(['r3/orders'], '127.0.0.1:2005') });
      const old = (await call(url, 'GET', '/v1/workloads/r3/orders/routes')).body.revision as number;
      for (let i = 0; i < 6; i++) {
        await call(url, 'PUT', '/v1/sandboxes/r3-a', { spec: spec(['r3/orders'], `127.0.0.1:${3000 + i}`) }); // log keeps 4
      }
      const current = (await call(url, 'GET', '/v1/workloads/r3/orders/routes')).body;
      for (const id of [old, current.revision + 1000, 'not-a-number']) {
        const w = await watch('r3/orders', id);
        const [snap] = await w.waitEvents(1);
        await sleep(30);
        expect(w.events, `Last-Event-ID ${id}`).toHaveLength(1);
        expect(snap?.event).toBe('snapshot');
        expect(snap?.data).toEqual(current);
      }
      // Within the kept window: deltas only.
      const recent = await watch('r3/orders', current.revision - 2);
      await recent.waitEvents(2);
      await sleep(30);
      expect(recent.events.map((e) => e.event)).toEqual(['upsert', 'upsert']);
    });
  });

  describe('watcher bookkeeping', () => {
    it('counts watchers and forgets them when they disconnect', async () => {
      const before = (await call(url, 'GET', '/healthz')).body.watchers as number;
      const a = await watch('b1/orders');
      const b = await watch('b1/orders');
      await a.waitEvents(1);
      await b.waitEvents(1);
      expect((await call(url, 'GET', '/healthz')).body.watchers).toBe(before + 2);
      a.close();
      b.close();
      for (let i = 0; i < 50 && (await call(url, 'GET', '/healthz')).body.watchers !== before; i++) await sleep(10);
      expect((await call(url, 'GET', '/healthz')).body.watchers).toBe(before);
    });

    it('watching made-up workloads leaves no state behind', async () => {
      const push = app.controlPlane.push;
      const before = push.channelCount;
      const watchers = await Promise.all(Array.from({ length: 50 }, (_, i) => watch(`ghost/w${i}`)));
      await Promise.all(watchers.map((w) => w.waitEvents(1)));
      expect(push.channelCount).toBe(before + 50);
      for (const w of watchers) w.close();
      for (let i = 0; i < 100 && push.channelCount !== before; i++) await sleep(10);
      expect(push.channelCount).toBe(before);
    });

    it('refuses watchers past --max-watchers with 503', async () => {
      const small = await listenApp({ maxWatchers: 1 });
      try {
        const first = await SseClient.connect(small.url, '/v1/workloads/m/orders/routes/watch');
        clients.push(first);
        await first.waitEvents(1);
        const second = await call(small.url, 'GET', '/v1/workloads/m/orders/routes/watch');
        expect(second.status).toBe(503);
        expect(second.body.error.code).toBe('LANEWAY_ERR_TOO_MANY_WATCHERS');
      } finally {
        await small.app.close();
      }
    });

    it('closing the app ends open streams promptly', async () => {
      const other = await listenApp();
      const w = await SseClient.connect(other.url, '/v1/workloads/c/orders/routes/watch');
      await w.waitEvents(1);
      const started = Date.now();
      await other.app.close();
      await w.until((c) => c.closed, 2000, 'stream end');
      expect(Date.now() - started).toBeLessThan(2000);
    });
  });
});
