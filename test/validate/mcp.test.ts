// `laneway mcp` driven by the MCP SDK's own client over stdio: tools listed with precise schemas, a plan run end to end, clear-text errors.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CLI } from '../helpers/processes.js';
import { call, removeTempDirs, startControlPlane, tempDir, type ControlPlaneProcess } from '../control-plane/helpers.js';
import { catalogPlan, startLane, WORKLOAD, type Lane } from './fixture.js';

let cp: ControlPlaneProcess;
let lane: Lane;
let client: Client;

function text(result: Awaited<ReturnType<Client['callTool']>>): string {
  return (result.content as { type: string; text: string }[]).map((c) => c.text).join('\n');
}

beforeAll(async () => {
  cp = await startControlPlane(tempDir(), ['--probe-interval', '200ms']);
  lane = await startLane(cp.url);
  const stored = await call(cp.url, 'PUT', '/v1/plans/catalog-check', { plan: parseYaml(catalogPlan(lane.url)), tags: ['stable'] });
  expect(stored.status).toBe(201);
  client = new Client({ name: 'laneway-test', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'mcp'],
      env: { PATH: process.env.PATH ?? '', LANEWAY_URL: cp.url },
      stderr: 'pipe',
    }),
  );
});

afterAll(async () => {
  await client?.close();
  await lane?.stop();
  await cp?.stop();
  removeTempDirs();
});

describe('laneway mcp', () => {
  it('lists every tool with a precise input schema', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      ['local_lane_connect', 'local_lane_disconnect', 'plan_run', 'plans_list', 'propagation_doctor', 'routes_get', 'run_get', 'runs_list', 'sandbox_apply', 'sandbox_delete', 'sandbox_get', 'sandbox_list', 'sandbox_traffic', 'skills_list'],
    );
    const apply = tools.find((t) => t.name === 'sandbox_apply')!;
    expect(apply.inputSchema.required).toEqual(['name', 'spec']);
    expect(apply.inputSchema.additionalProperties).toBe(false);
    const fork = (apply.inputSchema.properties as any).spec.properties.forks.items;
    expect(fork.required).toEqual(['workload', 'targets']);
    expect(fork.properties.workload.pattern).toBeDefined();
    const run = tools.find((t) => t.name === 'plan_run')!;
    expect(run.inputSchema.required).toEqual(['plan', 'sandbox']);
    for (const tool of tools) expect(tool.description!.length).toBeGreaterThan(30);
  });

  it('lists skills and runs a plan end to end, then fetches the stored run', async () => {
    const skills = JSON.parse(text(await client.callTool({ name: 'skills_list', arguments: {} })));
    expect(skills).toMatchObject([{ name: 'catalog-check', version: '1.0.0', tag: 'stable' }]);

    const before = lane.renamed.seen.length;
    const result = await client.callTool({ name: 'plan_run', arguments: { plan: 'catalog-check', sandbox: 'pr-rename', params: { itemId: 9 } } });
    expect(result.isError).toBeFalsy();
    const summary = text(result);
    expect(summary).toMatch(/^plan catalog-check@1\.0\.0 against sandbox pr-rename \(key \S+\): FAIL/);
    expect(summary).toContain('✗ body matches schema: body $.total is required');
    expect(lane.renamed.seen.length).toBeGreaterThan(before);
    const id = /run id: (\S+)/.exec(summary)![1]!;
    const run = JSON.parse(text(await client.callTool({ name: 'run_get', arguments: { id } })));
    expect(run).toMatchObject({ id, status: 'failed', sandbox: 'pr-rename' });
    expect(run.result.steps[1].inputs.url).toBe(`${lane.url}/items/9`);

    const pass = text(await client.callTool({ name: 'plan_run', arguments: { plan: 'catalog-check', version: 'stable', sandbox: 'pr-same' } }));
    expect(pass).toContain(': PASS (3 passed');
  });

  it('applies, reads and deletes sandboxes and shows routes', async () => {
    const applied = JSON.parse(
      text(await client.callTool({ name: 'sandbox_apply', arguments: { name: 'agent-1', spec: { routingKey: 'agentkey1', forks: [{ workload: 'default/agent', targets: { '8080': `127.0.0.1:${lane.same.port}` } }] } } })),
    );
    expect(applied.status.routingKey).toBe('agentkey1');
    const routes = JSON.parse(text(await client.callTool({ name: 'routes_get', arguments: { workload: 'default/agent' } })));
    expect(routes.routes).toEqual([{ key: 'agentkey1', sandbox: 'agent-1', targets: { '8080': `127.0.0.1:${lane.same.port}` } }]);
    const list = JSON.parse(text(await client.callTool({ name: 'sandbox_list', arguments: {} })));
    expect(list.items.map((s: any) => s.name)).toContain('agent-1');
    expect(JSON.parse(text(await client.callTool({ name: 'sandbox_delete', arguments: { name: 'agent-1' } }))).name).toBe('agent-1');
    const catalogRoutes = JSON.parse(text(await client.callTool({ name: 'routes_get', arguments: { workload: WORKLOAD } })));
    expect(catalogRoutes.routes).toHaveLength(3);
  });

  it('answers mistakes in clear text an agent can act on', async () => {
    const missing = await client.callTool({ name: 'sandbox_get', arguments: { name: 'nope' } });
    expect(missing.isError).toBe(true);
    expect(text(missing)).toBe('LANEWAY_ERR_SANDBOX_NOT_FOUND (HTTP 404): sandbox nope does not exist [field name]. Next: call sandbox_list to see the sandboxes, or sandbox_apply to create it.');

    const badArgs = await client.callTool({ name: 'plan_run', arguments: { plan: 'catalog-check' } });
    expect(badArgs.isError).toBe(true);
    expect(text(badArgs)).toBe('invalid arguments for plan_run: sandbox: is required');

    const badParam = await client.callTool({ name: 'plan_run', arguments: { plan: 'catalog-check', sandbox: 'pr-same', params: { itemId: 'x' } } });
    expect(text(badParam)).toContain('LANEWAY_ERR_PARAM_INVALID (HTTP 400): params.itemId: expected an integer, got "x"');
    expect(text(badParam)).toContain("Next: call plans_list to see the plan's parameters and their types.");

    const unknown = await client.callTool({ name: 'plan_run', arguments: { plan: 'no-such-plan', sandbox: 'pr-same' } });
    expect(text(unknown)).toContain('LANEWAY_ERR_PLAN_NOT_FOUND (HTTP 404): plan no-such-plan does not exist');
  });
});

describe('MCP tool schemas', () => {
  it("sandbox_apply's spec is the API's spec schema (every field and limit) plus the shared name rules", async () => {
    const { TOOLS } = await import('../../cli/mcp.js');
    const { SPEC_SCHEMA } = await import('../../control-plane/api/sandboxes.js');
    const { WORKLOAD_PATTERN } = await import('../../core/names.js');
    const apply = TOOLS.find((t) => t.name === 'sandbox_apply')!;
    const spec = (apply.inputSchema as { properties: { spec: typeof SPEC_SCHEMA } }).properties.spec;
    expect(Object.keys(spec.properties).sort()).toEqual(Object.keys(SPEC_SCHEMA.properties).sort());
    expect(spec.properties.forks.maxItems).toBe(SPEC_SCHEMA.properties.forks.maxItems);
    expect(spec.properties.routingKey.maxLength).toBe(SPEC_SCHEMA.properties.routingKey.maxLength);
    expect((spec.properties.forks.items.properties.workload as { pattern?: string }).pattern).toBe(WORKLOAD_PATTERN);
    // Derived from a copy: the server's own schema is not changed by it.
    expect((SPEC_SCHEMA.properties.forks.items.properties.workload as { pattern?: string }).pattern).toBeUndefined();
  });
});
