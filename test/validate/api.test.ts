// The plans API on a real control plane process started with --policy: storage and tags, server-side runs, policy refusals, restart, and skills export.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { waitFor } from '../../core/poll.js';
import { runLaneway } from '../helpers/processes.js';
import { call, removeTempDirs, startControlPlane, tempDir, type ControlPlaneProcess } from '../control-plane/helpers.js';
import { catalogPlan, startLane, workdir, type Lane } from './fixture.js';

let cp: ControlPlaneProcess;
let lane: Lane;
let wd: ReturnType<typeof workdir>;
let dataDir: string;
let policyFile: string;
let plan: Record<string, any>;

const startCp = () => startControlPlane(dataDir, ['--policy', policyFile, '--probe-interval', '200ms']);

beforeAll(async () => {
  wd = workdir();
  dataDir = tempDir();
  policyFile = wd.file('policy.yaml', 'hosts: ["127.0.0.0/8"]\nmethods: [GET]\nload: {maxRequests: 100, maxRate: 500}\nmaxTimeout: 30s\n');
  cp = await startCp();
  lane = await startLane(cp.url);
  plan = parseYaml(catalogPlan(lane.url));
});

afterAll(async () => {
  await lane?.stop();
  await cp?.stop();
  wd?.remove();
  removeTempDirs();
});

describe('PUT /v1/plans/:name', () => {
  it('stores a version with tags, is idempotent, and refuses the same version with other content (409)', async () => {
    const created = await call(cp.url, 'PUT', '/v1/plans/catalog-check', { plan, tags: ['candidate'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'catalog-check', version: '1.0.0', tags: ['candidate'], result: 'created' });

    // Key order differs, content does not: unchanged.
    const reordered = Object.fromEntries(Object.entries(plan).reverse());
    const again = await call(cp.url, 'PUT', '/v1/plans/catalog-check', { plan: reordered });
    expect(again.status).toBe(200);
    expect(again.body.result).toBe('unchanged');

    const changed = await call(cp.url, 'PUT', '/v1/plans/catalog-check', { plan: { ...plan, description: 'something else' } });
    expect(changed.status).toBe(409);
    expect(changed.body.error).toMatchObject({ code: 'LANEWAY_ERR_PLAN_VERSION_CONFLICT', field: 'plan.version' });

    const tagged = await call(cp.url, 'PUT', '/v1/plans/catalog-check', { plan, tags: ['stable'] });
    expect(tagged.body).toMatchObject({ result: 'tagged', tags: ['candidate', 'stable'] });
  });

  it('names the path of an invalid plan, a name mismatch and a bad tag', async () => {
    const bad = structuredClone(plan);
    bad.steps[1].http.url = 'orders/items';
    const invalid = await call(cp.url, 'PUT', '/v1/plans/catalog-check', { plan: { ...bad, version: '9' } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error).toEqual({
      code: 'LANEWAY_ERR_PLAN_INVALID',
      message: "plan.steps[1].http.url: must be an absolute http:// or https:// URL, got 'orders/items'",
      field: 'plan.steps[1].http.url',
    });
    const mismatch = await call(cp.url, 'PUT', '/v1/plans/other', { plan });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.field).toBe('plan.name');
    const openapi = await call(cp.url, 'GET', '/openapi.json');
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/v1/plans/{name}', '/v1/plans', '/v1/plans/{name}/versions/{ref}', '/v1/plans/{name}/runs', '/v1/runs/{id}']));
    const tag = await call(cp.url, 'PUT', '/v1/plans/catalog-check', { plan, tags: ['latest'] });
    expect(tag.status).toBe(400);
    expect(tag.body.error.code).toBe('LANEWAY_ERR_INVALID_FIELD');
  });

  it('moves a tag to a newer version; GET lists versions and resolves version, tag and latest', async () => {
    const v2 = { ...plan, version: '2.0.0' };
    expect((await call(cp.url, 'PUT', '/v1/plans/catalog-check', { plan: v2, tags: ['stable'] })).status).toBe(201);
    const list = await call(cp.url, 'GET', '/v1/plans');
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0].tags).toEqual({ candidate: '1.0.0', stable: '2.0.0' });
    expect(list.body.items[0].versions.map((v: any) => [v.version, v.tags])).toEqual([['1.0.0', ['candidate']], ['2.0.0', ['stable']]]);
    expect(list.body.items[0].versions[0].params.itemId).toEqual({ type: 'integer', default: 7, description: 'the item to read' });
    expect((await call(cp.url, 'GET', '/v1/plans/catalog-check/versions/stable')).body.version).toBe('2.0.0');
    expect((await call(cp.url, 'GET', '/v1/plans/catalog-check/versions/latest')).body.version).toBe('2.0.0');
    const one = await call(cp.url, 'GET', '/v1/plans/catalog-check/versions/1.0.0');
    expect(one.body.plan.steps.map((s: any) => s.id)).toEqual(['ready', 'get-item', 'same-shape']);
    const missing = await call(cp.url, 'GET', '/v1/plans/catalog-check/versions/9.9');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('LANEWAY_ERR_PLAN_NOT_FOUND');
  });
});

describe('POST /v1/plans/:name/runs', () => {
  it('runs server-side, stores the result, and serves it from GET /v1/runs/:id', async () => {
    const before = lane.same.seen.length;
    const run = await call(cp.url, 'POST', '/v1/plans/catalog-check/runs', { sandbox: 'pr-same', params: { itemId: '4' }, wait: true });
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(run.body).toMatchObject({ plan: 'catalog-check', version: '2.0.0', sandbox: 'pr-same', status: 'passed' });
    expect(run.body.result.summary).toEqual({ steps: 3, passed: 3, failed: 0, errored: 0, skipped: 0 });
    expect(run.body.result.params.itemId).toBe(4);
    expect(lane.same.seen.length).toBeGreaterThan(before);
    const stored = await call(cp.url, 'GET', `/v1/runs/${run.body.id}`);
    expect(stored.body).toEqual(run.body);
  });

  it('answers 202 at once and the run finishes in the background; a failing run is stored as failed', async () => {
    const started = await call(cp.url, 'POST', '/v1/plans/catalog-check/runs', { version: '1.0.0', sandbox: 'pr-rename' });
    expect(started.status).toBe(202);
    expect(started.body.status).toBe('running');
    let run: any;
    await waitFor('the run to finish', async () => {
      run = (await call(cp.url, 'GET', `/v1/runs/${started.body.id}`)).body;
      return run.status !== 'running';
    });
    expect(run.status).toBe('failed');
    expect(run.result.steps[1].assertions.find((a: any) => !a.pass).message).toBe('body $.total is required');
  });

  it('refuses before sending anything: policy (403, naming the rule), unknown sandbox (404), bad params (400)', async () => {
    const heavy = { name: 'catalog-load', version: '1', steps: [{ id: 'load', load: { url: `${lane.url}/items/1`, requests: 500, rate: 100 } }] };
    expect((await call(cp.url, 'PUT', '/v1/plans/catalog-load', { plan: heavy })).status).toBe(201);
    const seen = lane.baseline.seen.length + lane.same.seen.length;
    const refused = await call(cp.url, 'POST', '/v1/plans/catalog-load/runs', { sandbox: 'pr-same', wait: true });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'LANEWAY_ERR_POLICY_VIOLATION', rule: 'load.maxRequests', field: 'steps[0].load.requests' });
    expect(refused.body.error.message).toContain(`refused by policy ${policyFile}, rule load.maxRequests`);

    const post = { name: 'catalog-post', version: '1', steps: [{ id: 'p', http: { url: 'http://[::1]:9/x', method: 'POST' } }] };
    await call(cp.url, 'PUT', '/v1/plans/catalog-post', { plan: post });
    const both = await call(cp.url, 'POST', '/v1/plans/catalog-post/runs', { sandbox: 'pr-same' });
    expect(both.status).toBe(403);
    expect(both.body.error.rule).toBe('methods');
    expect(both.body.error.message).toContain('also: steps[0].http.url: host [::1] is not allowed');

    const unknown = await call(cp.url, 'POST', '/v1/plans/catalog-check/runs', { sandbox: 'nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('LANEWAY_ERR_SANDBOX_NOT_FOUND');
    const param = await call(cp.url, 'POST', '/v1/plans/catalog-check/runs', { sandbox: 'pr-same', params: { itemId: 'seven' } });
    expect(param.status).toBe(400);
    expect(param.body.error).toMatchObject({ code: 'LANEWAY_ERR_PARAM_INVALID', field: 'params.itemId' });
    expect(lane.baseline.seen.length + lane.same.seen.length).toBe(seen);
    expect((await call(cp.url, 'GET', '/v1/runs/no-such-run')).body.error.code).toBe('LANEWAY_ERR_RUN_NOT_FOUND');
  });
});

describe('laneway skills and plans from the control plane', () => {
  it('exports tagged versions as skill folders with SKILL.md and the exact plan', async () => {
    const dir = join(wd.dir, 'skills');
    const res = await runLaneway(['skills', 'export', dir], { LANEWAY_URL: cp.url });
    expect(res.code, res.stderr).toBe(0);
    // catalog-load and catalog-post carry no tag: not skills.
    expect(readdirSync(dir)).toEqual(['catalog-check']);
    const skill = readFileSync(join(dir, 'catalog-check', 'SKILL.md'), 'utf8');
    expect(skill).toMatch(/^---\nname: catalog-check\ndescription: "The catalog answers items with a price, and the sandbox keeps the baseline's response schema\. Use when you changed the catalog service"\n---\n/);
    expect(skill).toContain('`laneway plan run catalog-check@2.0.0 --sandbox <your-sandbox>`');
    expect(skill).toContain('| `itemId` | integer | `7` | the item to read |');
    expect(skill).toContain('- `same-shape` (compare):');
    const copy = parseYaml(readFileSync(join(dir, 'catalog-check', 'plan.yaml'), 'utf8'));
    expect(copy).toEqual({ ...plan, version: '2.0.0' });
  });

  it('laneway plan run <name>@<tag> fetches the stored version and runs it locally', async () => {
    const res = await runLaneway(['plan', 'run', 'catalog-check@stable', '--sandbox', 'pr-same'], { LANEWAY_URL: cp.url });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^plan catalog-check@2\.0\.0 against sandbox pr-same .*: PASS/);
  });

  it('plans, tags and runs survive a restart; a bad --policy file exits 2 naming it', async () => {
    const run = await call(cp.url, 'POST', '/v1/plans/catalog-check/runs', { sandbox: 'pr-same', wait: true });
    // A run in flight when the control plane stops ends as an error, not as a verdict.
    const closed = (await call(cp.url, 'PUT', '/v1/sandboxes/pr-pending', { spec: { forks: [{ workload: 'default/nothing', targets: { '80': '127.0.0.1:9' } }] } })).status;
    expect(closed).toBe(201);
    await call(cp.url, 'PUT', '/v1/plans/waiter', { plan: { name: 'waiter', version: '1', steps: [{ id: 'w', wait: { timeout: '20s' } }] } });
    const inFlight = await call(cp.url, 'POST', '/v1/plans/waiter/runs', { sandbox: 'pr-pending' });
    expect(inFlight.body.status).toBe('running');
    await cp.stop();
    cp = await startCp();
    expect((await call(cp.url, 'GET', `/v1/runs/${run.body.id}`)).body.status).toBe('passed');
    const aborted = (await call(cp.url, 'GET', `/v1/runs/${inFlight.body.id}`)).body;
    expect(aborted).toMatchObject({ status: 'error', error: { code: 'LANEWAY_ERR_RUN_ABORTED' } });
    expect(aborted.result.steps[0].error.code).toBe('LANEWAY_ERR_RUN_ABORTED');
    expect((await call(cp.url, 'GET', '/v1/plans/catalog-check/versions/stable')).body.version).toBe('2.0.0');

    const bad = wd.file('bad-policy.yaml', 'load: {maxRate: fast}\n');
    const res = await runLaneway(['control-plane', '--listen', '127.0.0.1:0', '--data', tempDir(), '--policy', bad]);
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toBe(`laneway: --policy: ${bad}: load.maxRate: must be integer`);
  });
});
