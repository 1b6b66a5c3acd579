// `laneway plan run` as a child process on the local mini-mesh: pass, a readable failure, compare catching a renamed field, load side by side, policy refusals, JUnit.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mesh } from '../../demo/mesh.js';
import { freePort, runLaneway } from '../helpers/processes.js';
import { catalogPlan, startLane, workdir, type Lane } from './fixture.js';

let mesh: Mesh;
let lane: Lane;
let wd: ReturnType<typeof workdir>;
let orders: { key: string };

const laneway = (args: string[]) => runLaneway(['plan', ...args], { LANEWAY_URL: mesh.controlPlaneUrl, LANEWAY_TOKEN: '' });
const seenBy = (): number => lane.baseline.seen.length + lane.renamed.seen.length + lane.same.seen.length + lane.slow.seen.length;

beforeAll(async () => {
  wd = workdir();
  mesh = await Mesh.start();
  const fork = await mesh.startFork('orders', 'orders-v2');
  orders = await mesh.applySandbox('orders-pr-1', [fork]);
  lane = await startLane(mesh.controlPlaneUrl);
});

afterAll(async () => {
  await lane?.stop();
  await mesh?.stop();
  wd?.remove();
});

describe('laneway plan run', () => {
  it('passes a plan through the mesh: the sandbox key reaches the fork two hops down, the baseline does not', async () => {
    const plan = wd.file(
      'mesh.yaml',
      `name: mesh-path
version: "1"
steps:
  - id: ready
    wait: {}
  - id: through-sandbox
    http: {url: "${mesh.entryUrl}/"}
    assert:
      - status: 200
      - jsonpath: $.path
        equals: [web, orders-v2, payments]
  - id: through-baseline
    http: {url: "${mesh.entryUrl}/", target: baseline, headers: {baggage: "laneway=${orders.key}"}}
    assert:
      - jsonpath: $.path
        equals: [web, orders, payments]
`,
    );
    const junitFile = `${wd.dir}/mesh.xml`;
    const res = await laneway(['run', plan, '--sandbox', 'orders-pr-1', '--junit', junitFile]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^plan mesh-path@1 against sandbox orders-pr-1 \(key \S+\): PASS \(3 passed, 0 failed, 0 errors, 0 skipped/);
    const xml = readFileSync(junitFile, 'utf8');
    expect(xml).toContain('<testsuite name="mesh-path@1" tests="3" failures="0" errors="0" skipped="0"');
    expect(xml.match(/<testcase /g)).toHaveLength(3);
  });

  it('runs the catalog plan green against a faithful fork, merging the routing key into existing baggage', async () => {
    const plan = wd.file('catalog.yaml', catalogPlan(lane.url));
    const before = lane.same.seen.length;
    const res = await laneway(['run', plan, '--sandbox', 'pr-same', '--param', 'itemId=3', '-o', 'json']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const result = JSON.parse(res.stdout);
    expect(result.verdict).toBe('pass');
    expect(result.params).toEqual({ itemId: 3, base: lane.url });
    const get = result.steps[1];
    expect(get.outputs).toMatchObject({ status: 200, itemId: 3, servedBy: 'catalog-same' });
    expect(get.assertions.map((a: { pass: boolean }) => a.pass)).toEqual([true, true, true, true, true, true]);
    // The captured id fed the compare step's URL; generatedAt differs every call and was ignored.
    const compare = result.steps[2];
    expect(compare.inputs.url).toBe(`${lane.url}/items/3`);
    expect(compare.diffs).toEqual([]);
    expect(compare.ignoredDiffs).toBe(1);
    // W3C baggage: the service's own member kept, ours appended.
    const sent = lane.same.seen.slice(before).map((s) => s.headers.baggage);
    expect(sent).toContain(`tenant=acme,laneway=${lane.keys['pr-same']}`);
  });

  it('fails with a readable reason naming the step, the assertion and the actual body, and skips the rest', async () => {
    const plan = wd.file('catalog.yaml', catalogPlan(lane.url));
    const junitFile = `${wd.dir}/fail.xml`;
    const res = await laneway(['run', plan, '--sandbox', 'pr-rename', '--junit', junitFile]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('FAIL (1 passed, 1 failed, 0 errors, 1 skipped');
    expect(res.stdout).toMatch(/FAIL  get-item: http GET http:\/\/127\.0\.0\.1:\d+\/items\/7 \[sandbox\] → 200/);
    expect(res.stdout).toContain('✗ body matches schema: body $.total is required');
    expect(res.stdout).toContain('SKIP  same-shape');
    const xml = readFileSync(junitFile, 'utf8');
    expect(xml).toContain('failures="1" errors="0" skipped="1"');
    expect(xml).toContain('<failure type="assertion" message="body $.total is required">');
  });

  it('compare catches the renamed field a fork serves, as RFC 6902 operations, ignoring the timestamp', async () => {
    const plan = wd.file(
      'compare.yaml',
      `name: catalog-schema
version: "1"
steps:
  - id: schema
    compare: {url: "${lane.url}/items/5", ignore: [$.generatedAt]}
`,
    );
    const res = await laneway(['run', plan, '--sandbox', 'pr-rename', '-o', 'json']);
    expect(res.code).toBe(1);
    const step = JSON.parse(res.stdout).steps[0];
    expect(step.verdict).toBe('fail');
    expect(step.diffs).toEqual([
      { op: 'add', path: '$.amount', pointer: '/amount', sandbox: 42 },
      { op: 'remove', path: '$.total', pointer: '/total', baseline: 42 },
    ]);
    expect(step.ignoredDiffs).toBe(1);
    expect(step.exchanges.baseline.response.headers['x-served-by']).toBe('catalog');
    expect(step.exchanges.sandbox.response.headers['x-served-by']).toBe('catalog-v2');
    expect(step.assertions[0].message).toBe('2 unexpected differences: $.amount: only in the sandbox (42); $.total: missing in the sandbox (baseline 42)');

    // The summary names each difference once, one per line under the failed check.
    const summary = await laneway(['run', plan, '--sandbox', 'pr-rename']);
    expect(summary.code).toBe(1);
    expect(summary.stdout.split('$.total: missing in the sandbox (baseline 42)').length - 1, summary.stdout).toBe(1);
    expect(summary.stdout.split('$.amount: only in the sandbox (42)').length - 1, summary.stdout).toBe(1);
    expect(summary.stdout).toContain('✗ no unexpected differences between baseline and sandbox: 2 unexpected differences\n');
  });

  it('load compares sandbox and baseline percentiles: a fork 120 ms slower breaks the bound, a faithful one keeps it', async () => {
    const plan = (name: string, bounds: string) =>
      wd.file(
        `${name}.yaml`,
        `name: ${name}
version: "1"
steps:
  - id: load
    load: {url: "${lane.url}/items/1", requests: 40, rate: 200, connections: 4, bounds: ${bounds}}
`,
      );
    const slow = await laneway(['run', plan('load-slow', '{percentile: p50, maxIncrease: "50%", grace: 20ms}'), '--sandbox', 'pr-slow', '-o', 'json']);
    expect(slow.code, slow.stderr).toBe(1);
    const step = JSON.parse(slow.stdout).steps[0];
    expect(step.load.baseline.requests).toBe(40);
    expect(step.load.sandbox.latency.p50).toBeGreaterThanOrEqual(120);
    expect(step.load.baseline.latency.p50).toBeLessThan(step.load.sandbox.latency.p50);
    expect(step.assertions[0]).toMatchObject({ pass: false, assertion: 'sandbox p50 <= baseline p50 × 1.5 + 20 ms' });
    expect(step.assertions[1]).toMatchObject({ pass: true, actual: 0 });
    expect(lane.slow.seen.length).toBe(40);

    // Generous bounds: on a shared 2-core machine the two sides' tails differ by scheduling alone.
    const same = await laneway(['run', plan('load-same', '{percentile: p50, maxIncrease: "300%", grace: 50ms}'), '--sandbox', 'pr-same']);
    expect(same.code, same.stdout).toBe(0);
    expect(same.stdout).toMatch(/latency ms\s+p50\s+p90\s+p99\s+max\s+errors\n\s+baseline .*\n\s+sandbox /);
  });

  it('a policy refuses a disallowed host and an over-limit load before sending anything (exit 2, naming the rule)', async () => {
    const policy = wd.file('policy.yaml', 'hosts: ["*.svc.cluster.local"]\nload: {maxRequests: 10, maxRate: 50}\n');
    const before = seenBy();
    const host = await laneway(['run', wd.file('catalog.yaml', catalogPlan(lane.url)), '--sandbox', 'pr-same', '--policy', policy]);
    expect(host.code).toBe(2);
    expect(host.stderr).toContain('LANEWAY_ERR_POLICY_VIOLATION');
    expect(host.stderr).toContain('rule hosts: steps[1].http.url: host 127.0.0.1 is not allowed (hosts: *.svc.cluster.local)');

    const loopback = wd.file('loopback.yaml', 'hosts: ["127.0.0.0/8"]\nload: {maxRequests: 10, maxRate: 50}\n');
    const load = wd.file('load.yaml', `name: too-much\nversion: "1"\nsteps:\n  - id: load\n    load: {url: "${lane.url}/items/1", requests: 500, rate: 100}\n`);
    const over = await laneway(['run', load, '--sandbox', 'pr-same', '--policy', loopback]);
    expect(over.code).toBe(2);
    expect(over.stderr).toContain('rule load.maxRequests: steps[0].load.requests: 500 exceeds load.maxRequests 10');
    expect(over.stderr).toContain('also: steps[0].load.rate: 100/s exceeds load.maxRate 50/s');
    expect(seenBy()).toBe(before);
  });

  it('exits 2 naming the path of an invalid plan, an unknown parameter and an unknown sandbox', async () => {
    const bad = wd.file('bad.yaml', 'name: bad\nversion: "1"\nsteps:\n  - id: x\n    exec: {command: rm -rf /}\n');
    const invalid = await laneway(['run', bad, '--sandbox', 'pr-same']);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('LANEWAY_ERR_PLAN_INVALID: steps[0].exec: is not a known field');

    const plan = wd.file('catalog.yaml', catalogPlan(lane.url));
    const param = await laneway(['run', plan, '--sandbox', 'pr-same', '--param', 'itemid=3']);
    expect(param.code).toBe(2);
    expect(param.stderr).toContain('params.itemid: plan catalog-check has no such parameter (it takes itemId, base)');

    const sandbox = await laneway(['run', plan, '--sandbox', 'nope']);
    expect(sandbox.code).toBe(2);
    expect(sandbox.stderr).toContain('LANEWAY_ERR_SANDBOX_NOT_FOUND: sandbox nope does not exist');
  });
  it('records why steps could not complete: refused, timed out, capture missing, reference unresolved, sandbox not Ready', async () => {
    const closed = await freePort();
    const pending = await mesh.api('PUT', '/v1/sandboxes/pr-pending', { spec: { forks: [{ workload: 'default/nothing', targets: { '80': `127.0.0.1:${closed}` } }] } });
    expect(pending.status).toBe(201);
    const plan = wd.file(
      'errors.yaml',
      `name: errors
version: "1"
continueOnFailure: true
steps:
  - id: refused
    http: {url: "http://127.0.0.1:${closed}/", target: baseline}
  - id: slow
    http: {url: "${lane.url}/items/1", timeout: 30ms}
  - id: capture
    http: {url: "${lane.url}/items/1", target: baseline}
    capture: {missing: $.nope}
  - id: uses
    http: {url: "${lane.url}/items/\${{ steps.capture.missing }}", target: baseline}
`,
    );
    const res = await laneway(['run', plan, '--sandbox', 'pr-slow', '-o', 'json']);
    expect(res.code).toBe(1);
    const steps = JSON.parse(res.stdout).steps;
    expect(steps.map((s: any) => [s.id, s.verdict, s.error?.code])).toEqual([
      ['refused', 'error', 'LANEWAY_ERR_STEP_REQUEST_FAILED'],
      ['slow', 'error', 'LANEWAY_ERR_STEP_TIMEOUT'],
      ['capture', 'error', 'LANEWAY_ERR_STEP_CAPTURE'],
      ['uses', 'error', 'LANEWAY_ERR_STEP_REFERENCE'],
    ]);
    expect(steps[0].error.message).toBe(`GET http://127.0.0.1:${closed}/: ECONNREFUSED`);
    expect(steps[2].error.message).toBe('capture missing: $.nope matched nothing in the response body');
    expect(steps[2].exchanges.baseline.response.status).toBe(200);
    expect(steps[3].error.message).toBe('${{ steps.capture.missing }} has no value: step capture did not produce missing');

    const wait = wd.file('wait.yaml', 'name: wait\nversion: "1"\nsteps:\n  - id: ready\n    wait: {timeout: 600ms}\n  - id: after\n    wait: {}\n');
    const notReady = await laneway(['run', wait, '--sandbox', 'pr-pending']);
    expect(notReady.code).toBe(1);
    expect(notReady.stdout).toContain(`LANEWAY_ERR_SANDBOX_NOT_READY: sandbox pr-pending not Ready after 600 ms: 127.0.0.1:${closed}:`);
    expect(notReady.stdout).toContain('SKIP  after');
  });
});
