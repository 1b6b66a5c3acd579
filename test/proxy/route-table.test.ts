// The shared route model: validation with field paths, O(1) lookup, deltas, and snapshot round trips.
import { describe, expect, it } from 'vitest';
import { parseHostPort, parseTarget, RouteTable, RouteTableError, TARGET_H2C, TARGET_HTTP1, TARGET_INHERIT, validateRoute, validateSnapshot } from '../../model/route-table.js';

const good = {
  workload: 'default/orders',
  revision: 7,
  routes: [{ key: 'k7f3q2', sandbox: 'pr-42', targets: { '8080': '127.0.0.2:8080' } }],
};

function errorPath(input: unknown): string {
  try {
    validateSnapshot(input);
  } catch (err) {
    expect(err).toBeInstanceOf(RouteTableError);
    return (err as RouteTableError).path;
  }
  throw new Error('expected a validation error');
}

describe('validateSnapshot', () => {
  it('accepts the documented example', () => {
    expect(validateSnapshot(good)).toEqual(good);
  });
  it.each([
    [{ ...good, workload: 'orders' }, 'workload'],
    [{ ...good, workload: 'Default/orders' }, 'workload'],
    [{ ...good, revision: -1 }, 'revision'],
    [{ ...good, revision: 1.5 }, 'revision'],
    [{ ...good, routes: {} }, 'routes'],
    [{ ...good, routes: [{ ...good.routes[0], key: 'has space' }] }, 'routes[0].key'],
    [{ ...good, routes: [{ ...good.routes[0], key: 'x'.repeat(65) }] }, 'routes[0].key'],
    [{ ...good, routes: [{ ...good.routes[0], sandbox: 'PR_42' }] }, 'routes[0].sandbox'],
    [{ ...good, routes: [{ ...good.routes[0], targets: {} }] }, 'routes[0].targets'],
    [{ ...good, routes: [{ ...good.routes[0], targets: { '0': 'a:1' } }] }, 'routes[0].targets.0'],
    [{ ...good, routes: [{ ...good.routes[0], targets: { '8080': 'nohost' } }] }, 'routes[0].targets.8080'],
    [{ ...good, routes: [{ ...good.routes[0], targets: { '8080': 'a b:80' } }] }, 'routes[0].targets.8080'],
    [{ ...good, routes: [{ ...good.routes[0], targets: { '8080': 'host:99999' } }] }, 'routes[0].targets.8080'],
    [{ ...good, routes: [good.routes[0], { ...good.routes[0], sandbox: 'other' }] }, 'routes[1].key'],
    [null, '$'],
  ])('rejects %j at %s', (input, path) => {
    expect(errorPath(input)).toBe(path);
  });
  it('parses IPv6 and DNS targets', () => {
    expect(parseHostPort('[::1]:8080')).toEqual({ host: '[::1]', port: 8080, address: '[::1]:8080', lane: false, protocol: 0 });
    expect(parseHostPort('orders-pr42.default.svc:8080')?.port).toBe(8080);
  });
  it('parses lane targets (the relay to dial) and refuses malformed ones', () => {
    expect(parseTarget('lane://laneway.laneway-system.svc:7071')).toEqual({ host: 'laneway.laneway-system.svc', port: 7071, address: 'lane://laneway.laneway-system.svc:7071', lane: true, protocol: 0 });
    expect(parseTarget('lane://[::1]:7071')?.host).toBe('[::1]');
    for (const bad of ['lane://', 'lane://host', 'lane://host:0', 'lane:/host:1', 'h2c://host', 'h2c://', 'http://host:0', 'https://host:1', 'h2://host:1', 'H2C://host:1']) expect(parseTarget(bad)).toBeUndefined();
    expect(parseHostPort('lane://host:1')).toBeUndefined();
  });
  it('parses a fork target that declares its protocol (h2c:// or http://); a bare host:port inherits the port\'s', () => {
    expect(parseTarget('h2c://orders-pr42.default.svc:8080')).toEqual({ host: 'orders-pr42.default.svc', port: 8080, address: 'h2c://orders-pr42.default.svc:8080', lane: false, protocol: TARGET_H2C });
    expect(parseTarget('http://[::1]:8080')).toEqual({ host: '[::1]', port: 8080, address: 'http://[::1]:8080', lane: false, protocol: TARGET_HTTP1 });
    expect(parseTarget('h2c-orders.default.svc:8080')?.protocol).toBe(TARGET_INHERIT);
    expect(parseTarget('lane://h2c.relay:7071')?.protocol).toBe(TARGET_INHERIT);
    expect(validateRoute({ key: 'k7f3q2', sandbox: 'pr-42', targets: { '8080': 'h2c://127.0.0.2:8080' } }).targets['8080']).toBe('h2c://127.0.0.2:8080');
  });
});

describe('RouteTable', () => {
  it('looks up by key and resolves the target per port', () => {
    const table = RouteTable.parse(good);
    const route = table.lookup('k7f3q2');
    expect(route?.sandbox).toBe('pr-42');
    expect(route?.targets.get(8080)).toEqual({ host: '127.0.0.2', port: 8080, address: '127.0.0.2:8080', lane: false, protocol: 0 });
    expect(route?.targets.get(9090)).toBeUndefined();
    expect(table.lookup('unknown')).toBeUndefined();
  });

  it('stays flat with 10,000 routes (Map lookup)', () => {
    const build = (n: number): RouteTable =>
      RouteTable.parse({
        workload: 'default/orders',
        revision: 1,
        routes: Array.from({ length: n }, (_, i) => ({ key: `key${i}`, sandbox: `sb-${i}`, targets: { '8080': `10.0.${i >> 8}.${i & 255}:8080` } })),
      });
    const small = build(10);
    const large = build(10_000);
    expect(large.size).toBe(10_000);
    expect(large.lookup('key9999')?.sandbox).toBe('sb-9999');

    // Flat = a lookup in 10,000 routes costs what one in 10 does. Not a speed target: only the ratio of
    // the two is asserted. Each table gets 3 hits spread over it and 1 miss (a scan must walk all of it
    // for the miss, whatever its order). Measured on the shared 2-core machine at load 3–5: the Map's
    // ratio 0.8–1.5× over 15 runs, a linear scan's ~1,100×, so a 5× bound separates them with room to
    // spare. A batch can be preempted: batches are short (~5 µs), interleaved (alternating which table
    // goes first, so drift and frequency changes hit both alike) and compared by their medians, so a
    // preempted batch falls into the discarded tail. No allocation in the loop, so no GC pauses.
    const probes = (keys: string[]): string[] => [...keys, 'missing'];
    const smallKeys = probes(['key0', 'key4', 'key9']);
    const largeKeys = probes(['key0', 'key4999', 'key9999']);
    const REPEAT = 100; // 400 lookups a batch
    const ROUNDS = 101;
    let found = 0;
    const batch = (table: RouteTable, keys: string[]): number => {
      const start = process.hrtime.bigint();
      for (let r = 0; r < REPEAT; r++) for (const key of keys) if (table.lookup(key) !== undefined) found++;
      return Number(process.hrtime.bigint() - start);
    };
    for (let i = 0; i < 25; i++) {
      // let the JIT settle
      batch(small, smallKeys);
      batch(large, largeKeys);
    }
    found = 0;
    const smallTimes: number[] = [];
    const largeTimes: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      if (i % 2 === 0) {
        smallTimes.push(batch(small, smallKeys));
        largeTimes.push(batch(large, largeKeys));
      } else {
        largeTimes.push(batch(large, largeKeys));
        smallTimes.push(batch(small, smallKeys));
      }
    }
    expect(found).toBe(2 * ROUNDS * REPEAT * 3); // every hit found, the miss never
    const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    const ratio = median(largeTimes) / median(smallTimes);
    expect(ratio, `median batch: ${median(largeTimes)} ns at 10,000 routes, ${median(smallTimes)} ns at 10`).toBeLessThan(5);
  });

  it('applies upserts and deletes in place: a sandbox keeps one route, a moved key leaves no stale sandbox', () => {
    const table = RouteTable.parse(good);
    expect(table.applyUpsert({ revision: 8, route: { key: 'newkey', sandbox: 'pr-42', targets: { '8080': 'h:1' } } })).toBe(table);
    expect(table.revision).toBe(8);
    expect(table.lookup('k7f3q2')).toBeUndefined(); // same sandbox, key changed
    expect(table.lookup('newkey')?.targets.get(8080)?.host).toBe('h');
    expect(table.size).toBe(1);
    // Another sandbox takes the key: pr-42 no longer has a route, and a later upsert of pr-42 leaves pr-43's alone.
    table.applyUpsert({ revision: 9, route: { key: 'newkey', sandbox: 'pr-43', targets: { '8080': 'h:2' } } });
    table.applyUpsert({ revision: 10, route: { key: 'otherkey', sandbox: 'pr-42', targets: { '8080': 'h:3' } } });
    expect(table.lookup('newkey')?.sandbox).toBe('pr-43');
    expect(table.lookup('otherkey')?.sandbox).toBe('pr-42');
    table.applyDelete({ revision: 11, key: 'newkey' });
    table.applyDelete({ revision: 12, key: 'absent' });
    expect(table.toSnapshot()).toEqual({ workload: 'default/orders', revision: 12, routes: [{ key: 'otherkey', sandbox: 'pr-42', targets: { '8080': 'h:3' } }] });
    // pr-43's index entry went with its route: upserting pr-43 again adds, and drops nothing of pr-42.
    table.applyUpsert({ revision: 13, route: { key: 'thirdkey', sandbox: 'pr-43', targets: { '8080': 'h:4' } } });
    expect(table.size).toBe(2);
  });

  it('rejects an invalid upsert and changes nothing', () => {
    const table = RouteTable.parse(good);
    expect(() => table.applyUpsert({ revision: 9, route: { key: 'bad key', sandbox: 'x', targets: { '1': 'h:1' } } })).toThrow(RouteTableError);
    expect(table.revision).toBe(7);
    expect(table.lookup('k7f3q2')).toBeDefined();
  });

  it('applies an upsert into a 10,000-route table without copying it (time independent of size)', () => {
    const routes = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `key${String(i).padStart(6, '0')}`, sandbox: `sb-${i}`, targets: { '8080': 'h:1' } }));
    const time = (table: RouteTable): number => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 2000; i++) table.applyUpsert({ revision: 100 + i, route: { key: `up${i}`, sandbox: `up-${i % 20}`, targets: { '8080': 'h:1' } } });
      return Number(process.hrtime.bigint() - start);
    };
    const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    const large: number[] = [];
    const small: number[] = [];
    for (let round = 0; round < 5; round++) {
      large.push(time(RouteTable.fromSnapshot({ workload: 'default/orders', revision: 1, routes: routes(10_000) })));
      small.push(time(RouteTable.fromSnapshot({ workload: 'default/orders', revision: 1, routes: routes(10) })));
    }
    // A full copy per delta would make this ~1000x; the bound leaves room for a noisy machine.
    expect(median(large) / median(small), `median ${median(large)} ns at 10,000 routes, ${median(small)} ns at 10`).toBeLessThan(5);
  });
});
