// Policy, assertions, the structural diff, reports and the error table, without I/O.
import { describe, expect, it } from 'vitest';
import { diffBodies, pointerToPath } from '../../validate/actions/compare.js';
import { withRoutingKey } from '../../validate/actions/http.js';
import { evaluate, type ResponseView } from '../../validate/assertions.js';
import { checkPolicy, compilePolicy } from '../../validate/policy.js';
import { junit, summarize } from '../../validate/report.js';
import type { RunResult } from '../../validate/runner.js';

describe('policy', () => {
  it('names the path of an invalid policy', () => {
    expect(() => compilePolicy({ actions: ['http', 'exec'] }, 'p.yaml')).toThrow('p.yaml: actions[1]: must be one of "http", "compare", "load", "wait"');
    expect(() => compilePolicy({ hosts: ['ok.svc', 'bad host'] }, 'p.yaml')).toThrow("p.yaml: hosts[1]: 'bad host' is neither a host glob");
    expect(() => compilePolicy({ load: { maxRpm: 1 } }, 'p.yaml')).toThrow('p.yaml: load.maxRpm: is not a known field');
  });

  it('reports every rule a plan breaks, with the field that breaks it', () => {
    const policy = compilePolicy({ actions: ['http', 'load'], hosts: ['*.svc', '10.0.0.0/8'], methods: ['GET'], maxTimeout: '5s', maxRequests: 50, load: { maxRequests: 20, maxRate: 10, maxDuration: '1s', maxConnections: 2 } });
    const violations = checkPolicy(policy, [
      { path: 'steps[0]', action: 'http', method: 'GET', url: 'http://orders.svc/x/${{ steps.a.b }}', timeoutMs: 5000 },
      { path: 'steps[1]', action: 'http', method: 'DELETE', url: 'http://10.2.3.4/x', timeoutMs: 6000 },
      { path: 'steps[2]', action: 'compare', method: 'GET', url: 'http://evil.example/x', timeoutMs: 1000 },
      { path: 'steps[3]', action: 'load', method: 'GET', url: 'http://a.svc/', timeoutMs: 1000, load: { requests: 30, rate: 20, connections: 4 } },
    ]);
    expect(violations.map((v) => [v.rule, v.field])).toEqual([
      ['methods', 'steps[1].http.method'],
      ['maxTimeout', 'steps[1].http.timeout'],
      ['actions', 'steps[2].compare'],
      ['hosts', 'steps[2].compare.url'],
      ['load.maxRequests', 'steps[3].load.requests'],
      ['load.maxRate', 'steps[3].load.rate'],
      ['load.maxConnections', 'steps[3].load.connections'],
      ['load.maxDuration', 'steps[3].load'],
      ['maxRequests', 'steps'],
    ]);
    expect(checkPolicy(compilePolicy(null), [{ path: 'steps[0]', action: 'http', method: 'GET', url: 'http://x', timeoutMs: 1 }])).toEqual([]);
  });
});

describe('baggage', () => {
  it('appends the key, keeps other members, replaces a stale key, and strips it for the baseline', () => {
    expect(withRoutingKey(undefined, 'k1')).toBe('laneway=k1');
    expect(withRoutingKey('tenant=acme, laneway=old;p=1, x=y', 'k1')).toBe('tenant=acme,x=y,laneway=k1');
    expect(withRoutingKey('tenant=acme,laneway=old', null)).toBe('tenant=acme');
    expect(withRoutingKey('laneway=old', null)).toBeUndefined();
    expect(withRoutingKey(undefined, 'a b')).toBe('laneway=a%20b');
  });
});

describe('assertions', () => {
  const response: ResponseView = {
    status: 201,
    headers: { 'content-type': 'application/json', etag: '"v1"' },
    body: { id: 7, items: [{ sku: 'SKU-1' }, { sku: 'X-2' }], at: 'yesterday' },
    json: true,
    durationMs: 12.3,
  };

  it.each([
    [{ status: 201 }, true, 'ok'],
    [{ status: [200, 204] }, false, 'expected in [200, 204], got 201'],
    [{ header: 'ETag', equals: '"v1"' }, true, 'ok'],
    [{ header: 'x-missing', exists: true }, false, 'the response has no x-missing header'],
    [{ jsonpath: '$.id', equals: 7 }, true, 'ok'],
    [{ jsonpath: '$.items[*].sku', equals: ['SKU-1', 'X-2'] }, true, 'ok'],
    [{ jsonpath: '$.items[*].sku', matches: '^SKU-' }, false, '$.items[*].sku is "X-2", which does not match /^SKU-/'],
    [{ jsonpath: '$.total', exists: true }, false, '$.total matched nothing in the response body'],
    [{ jsonpath: '$.total', exists: false }, true, 'ok'],
    [{ schema: { type: 'object', properties: { at: { type: 'string', format: 'date-time' } } } }, false, 'body $.at must match format "date-time"'],
    [{ latency: '10ms' }, false, 'took 12.3 ms, more than the 10 ms bound'],
  ])('%j → pass %s', (spec, pass, message) => {
    const result = evaluate(spec, response);
    expect(result.pass).toBe(pass);
    expect(result.message).toBe(message);
  });

  it('says so when the body is not JSON', () => {
    expect(evaluate({ jsonpath: '$.a', exists: true }, { ...response, body: '<html>', json: false }).message).toBe('the response body is not JSON');
  });
});

describe('compare diff', () => {
  it('lists added, removed and changed fields as sorted RFC 6902 operations, minus ignored subtrees', () => {
    const baseline = { id: 1, total: 5, meta: { at: 1, by: 'a' }, items: [{ id: 1 }, { id: 2 }] };
    const sandbox = { id: 1, amount: 5, meta: { at: 2, by: 'b' }, items: [{ id: 1 }] };
    expect(diffBodies(baseline, sandbox, ['$.meta.at']).differences).toEqual([
      { op: 'add', path: '$.amount', pointer: '/amount', sandbox: 5 },
      { op: 'remove', path: '$.items[1]', pointer: '/items/1', baseline: { id: 2 } },
      { op: 'replace', path: '$.meta.by', pointer: '/meta/by', baseline: 'a', sandbox: 'b' },
      { op: 'remove', path: '$.total', pointer: '/total', baseline: 5 },
    ]);
    expect(diffBodies(baseline, sandbox, ['$.meta', '$.items', '$.total', '$.amount'])).toEqual({ differences: [], ignored: 5 });
    expect(diffBodies('a', 'b').differences).toEqual([{ op: 'replace', path: '$', pointer: '', baseline: 'a', sandbox: 'b' }]);
    expect(pointerToPath('/a b/0/c~1d')).toBe('$["a b"][0]["c/d"]');
  });
});

describe('reports', () => {
  const result: RunResult = {
    plan: { name: 'p', version: '1' },
    sandbox: { name: 'pr-1', routingKey: 'k' },
    params: {},
    policy: null,
    verdict: 'fail',
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 1500,
    summary: { steps: 3, passed: 1, failed: 1, errored: 0, skipped: 1 },
    steps: [
      { id: 'a', action: 'http', verdict: 'pass', durationMs: 3, inputs: { url: 'http://h/a', method: 'GET', target: 'sandbox' }, outputs: { status: 200 }, assertions: [] },
      {
        id: 'b<&>',
        action: 'compare',
        verdict: 'fail',
        durationMs: 4,
        inputs: { url: 'http://h/b', method: 'GET' },
        outputs: { status: 200 },
        assertions: [{ assertion: 'no unexpected differences', pass: false, expected: 0, actual: 1, message: 'a "quoted" <tag> & \u0001' }],
        diffs: [{ op: 'remove', path: '$.total', pointer: '/total', baseline: 42 }],
      },
      { id: 'c', action: 'wait', verdict: 'skipped', reason: 'step b did not pass', assertions: [] },
    ],
  };

  it('summarizes in lines naming the failed check and the difference', () => {
    expect(summarize(result)).toBe(
      [
        'plan p@1 against sandbox pr-1 (key k): FAIL (1 passed, 1 failed, 0 errors, 1 skipped; 1500 ms)',
        '  PASS  a: http GET http://h/a [sandbox] → 200 (3 ms)',
        '  FAIL  b<&>: compare GET http://h/b → 200 (4 ms)',
        '        ✗ no unexpected differences: a "quoted" <tag> & \u0001',
        '          $.total: missing in the sandbox (baseline 42)',
        '  SKIP  c: wait for Ready',
        '        step b did not pass',
        '',
      ].join('\n'),
    );
  });

  it('writes well-formed JUnit with escaped text', () => {
    const xml = junit(result);
    expect(xml).toContain('<testsuite name="p@1" tests="3" failures="1" errors="0" skipped="1" time="1.500"');
    expect(xml).toContain('<testcase classname="p@1" name="b&lt;&amp;&gt; (compare)" time="0.004">');
    expect(xml).toContain('<failure type="assertion" message="a &quot;quoted&quot; &lt;tag&gt; &amp; ">no unexpected differences: a &quot;quoted&quot; &lt;tag&gt; &amp; \n$.total: missing in the sandbox (baseline 42)</failure>');
    expect(xml).toContain('<skipped message="step b did not pass"/>');
    expect(xml).not.toMatch(/[\u0000-\u0008]/);
  });
});
