// Run history and control on a real control plane: list with filters and paging, cancel of a running load step,
// history kept across a restart, and the CLI (`laneway run`, `plan run --server-side`) and MCP runs_list over it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
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

const startCp = () => startControlPlane(dataDir, ['--policy', policyFile, '--probe-interval', '200ms']);
const cli = (args: string[]) => runLaneway(args, { LANEWAY_URL: cp.url, LANEWAY_TOKEN: '' });

/** A plan whose one load step takes ~20 s: long enough to cancel mid-run. */
const slowPlan = (url: string): string => `name: slow-load
version: "1"
steps:
  - id: under-load
    load:
      url: ${url}/items/1
      requests: 400
      rate: 20
      connections: 2
`;

async function runOnServer(plan: string, sandbox: string, wait: boolean): Promise<Record<string, any>> {
  const res = await call(cp.url, 'POST', `/v1/plans/${plan}/runs`, { sandbox, wait });
  expect(res.status, JSON.stringify(res.body)).toBe(wait ? 200 : 202);
  return res.body;
}

beforeAll(async () => {
  wd = workdir();
  dataDir = tempDir();
  policyFile = wd.file('policy.yaml', 'hosts: ["127.0.0.0/8"]\nmethods: [GET]\nload: {maxRequests: 1000, maxRate: 500, maxDuration: 60s}\nmaxTimeout: 30s\n');
  cp = await startCp();
  lane = await startLane(cp.url);
  for (const text of [catalogPlan(lane.url), slowPlan(lane.url)]) {
    const plan = parseYaml(text) as { name: string };
    expect((await call(cp.url, 'PUT', `/v1/plans/${plan.name}`, { plan })).status).toBe(201);
  }
}, 90_000);

afterAll(async () => {
  await lane?.stop();
  await cp?.stop();
  wd?.remove();
  removeTempDirs();
});

describe('run history', () => {
  it('lists runs newest first, filters by plan, sandbox and status, and pages with a cursor', async () => {
    const runs = [];
    for (const sandbox of ['pr-same', 'pr-rename', 'pr-same']) runs.push(await runOnServer('catalog-check', sandbox, true));
    const all = (await call(cp.url, 'GET', '/v1/runs?plan=catalog-check')).body;
    expect(all.items.slice(0, 3).map((r: { id: string }) => r.id)).toEqual(runs.map((r) => r.id).reverse());
    expect(all.items[0]).not.toHaveProperty('result');
    expect(all.items[0].verdict).toBe(runs[2]!.result.verdict);

    const same = (await call(cp.url, 'GET', '/v1/runs?sandbox=pr-same')).body.items.map((r: { id: string }) => r.id);
    expect(same).toEqual([runs[2]!.id, runs[0]!.id]);
    const failed = (await call(cp.url, 'GET', '/v1/runs?status=failed')).body.items;
    expect(failed.every((r: { status: string }) => r.status === 'failed')).toBe(true);
    expect(failed.map((r: { id: string }) => r.id)).toContain(runs[1]!.id); // pr-rename renames a field: the schema assertion fails

    const first = (await call(cp.url, 'GET', '/v1/runs?plan=catalog-check&limit=2')).body;
    expect(first.items).toHaveLength(2);
    expect(first.next).toMatch(/^\d+\.\d+$/);
    const second = (await call(cp.url, 'GET', `/v1/runs?plan=catalog-check&limit=2&after=${first.next}`)).body;
    expect([...first.items, ...second.items].map((r: { id: string }) => r.id)).toEqual(runs.map((r) => r.id).reverse());
    expect(second.next).toBeNull();

    const bad = await call(cp.url, 'GET', '/v1/runs?limit=0');
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('limit');
  }, 60_000);

  it('cancels a running load step: the run ends as an error with LANEWAY_ERR_RUN_CANCELLED, its partial result kept; a second cancel is 409', async () => {
    const started = await runOnServer('slow-load', 'pr-same', false);
    expect(started.status).toBe('running');
    await new Promise((r) => setTimeout(r, 1500));
    const began = Date.now();
    const cancelled = await call(cp.url, 'POST', `/v1/runs/${started.id}/cancel`, {});
    expect(cancelled.status).toBe(200);
    expect(Date.now() - began).toBeLessThan(5000);
    expect(cancelled.body).toMatchObject({ id: started.id, status: 'error', error: { code: 'LANEWAY_ERR_RUN_CANCELLED' } });
    expect(cancelled.body.result.steps[0].id).toBe('under-load');
    const again = await call(cp.url, 'POST', `/v1/runs/${started.id}/cancel`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('LANEWAY_ERR_RUN_FINISHED');
    expect((await call(cp.url, 'POST', '/v1/runs/no-such-run/cancel', {})).status).toBe(404);
  }, 60_000);

  it('the CLI lists, shows, starts server-side and cancels; -o json prints the API shape', async () => {
    const list = await cli(['run', 'list', '--plan', 'catalog-check']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+PLAN\s+SANDBOX\s+STATUS\s+VERDICT\s+CREATED$/);
    const json = await cli(['run', 'list', '--status', 'failed', '-o', 'json']);
    const page = JSON.parse(json.stdout) as { items: { id: string; status: string }[]; next: string | null };
    expect(page.items.every((r) => r.status === 'failed')).toBe(true);

    const started = await cli(['plan', 'run', 'slow-load', '--server-side', '--sandbox', 'pr-same']);
    expect(started.code, started.stderr).toBe(0);
    const id = /^run\/(\S+) started/.exec(started.stdout)![1]!;
    const shown = await cli(['run', 'get', id]);
    expect(shown.stdout).toMatch(new RegExp(`run ${id} \\(slow-load@1, sandbox pr-same\\) is running`));
    const cancel = await cli(['run', 'cancel', id]);
    expect(cancel.stdout).toBe(`run/${id} cancelled (error, LANEWAY_ERR_RUN_CANCELLED)\n`);
    const done = (await call(cp.url, 'GET', '/v1/runs?plan=catalog-check&limit=1')).body.items[0].id as string;
    const report = await cli(['run', 'get', done, '-o', 'markdown']);
    expect(report.stdout).toMatch(/^### (✅|❌) Laneway: `catalog-check@1\.0\.0` (passed|failed)\n/);
    expect(report.stdout).toContain(`run \`${done}\``);
    const md = `${wd.dir}/summary.md`;
    const local = await cli(['plan', 'run', 'catalog-check', '--sandbox', 'pr-same', '--markdown', md]);
    expect(local.code, local.stderr).toBe(0);
    expect(readFileSync(md, 'utf8')).toMatch(/^### ✅ Laneway: `catalog-check@1\.0\.0` passed\n[\s\S]*\| get-item \|/);
    const fromFile = await cli(['plan', 'run', wd.file('p.yaml', slowPlan(lane.url)), '--server-side']);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toMatch(/--server-side: runs a stored plan/);
  }, 60_000);

  it('keeps the history across a restart', async () => {
    const before = (await call(cp.url, 'GET', '/v1/runs?limit=500')).body.items.map((r: { id: string; status: string }) => `${r.id}:${r.status}`);
    await cp.stop();
    cp = await startCp();
    await waitFor('the restarted control plane', async () => (await call(cp.url, 'GET', '/healthz')).status === 200, 10_000);
    const after = (await call(cp.url, 'GET', '/v1/runs?limit=500')).body.items.map((r: { id: string; status: string }) => `${r.id}:${r.status}`);
    expect(after).toEqual(before);
  }, 60_000);
});
