// `laneway mcp`: an MCP server on stdio giving coding agents sandboxes, routes, plans, skills and runs of the control plane as tools.
import { runDoctor } from '../client/doctor.js';
import { trafficLine } from './traffic.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { LanewayError } from '../core/errors.js';
import { createAjv, describeAjvError } from '../core/ajv.js';
import { lanewayVersion } from '../core/version.js';
import { DEFAULT_SERVER, LanewayClient, serverFrom, tokenFromEnv, type Run } from '../client/api.js';
import { openLocalLane, type LocalLane } from '../client/local-lane.js';
import { exposeAddress } from '../model/lanes.js';
import { RUNS_PAGE_MAX } from '../model/plans.js';
import { parseHostPort, type Target } from '../model/route-table.js';
import { SPEC_SCHEMA } from '../control-plane/api/sandboxes.js';
import { summarize } from '../validate/report.js';
import { DEFAULT_SKILL_TAG, skillsOf } from '../validate/skills.js';
import { parseFlags } from '../core/flags.js';
import { MCP_FLAGS } from './commands.js';
import { DNS_LABEL_PATTERN, ROUTING_KEY_PATTERN, WORKLOAD_PATTERN } from '../core/names.js';
import { DURATION_WITH_UNIT_PATTERN } from '../core/units.js';

const DNS_LABEL = { type: 'string', pattern: DNS_LABEL_PATTERN, description: 'DNS-1123 label: lowercase letters, digits and -, at most 63' } as const;
const WORKLOAD = { type: 'string', pattern: WORKLOAD_PATTERN, description: '<namespace>/<name>, e.g. default/orders' } as const;

/**
 * sandbox_apply's input: the API's own body schema, with the rules the API checks in code (names,
 * routing key, duration, ports) added as patterns so an agent sees them before it calls. Derived,
 * not restated: a new spec field or limit on the server appears here by itself.
 */
function sandboxApplySchema(): Record<string, unknown> {
  const spec = structuredClone(SPEC_SCHEMA) as unknown as JsonSchema;
  const { routingKey, ttl, forks } = spec.properties!;
  Object.assign(routingKey!, { pattern: ROUTING_KEY_PATTERN });
  Object.assign(ttl!, { pattern: DURATION_WITH_UNIT_PATTERN });
  Object.assign(forks!, { minItems: 1 });
  const fork = forks!.items!;
  Object.assign(fork.properties!.workload!, { pattern: WORKLOAD_PATTERN, description: `${fork.properties!.workload!.description}, e.g. default/orders` });
  Object.assign(fork.properties!.targets!, {
    minProperties: 1,
    propertyNames: { pattern: '^[0-9]{1,5}$' },
    description: 'app port (decimal string) → host:port of the fork, e.g. {"8080": "orders-pr42.default.svc:8080"}',
  });
  return {
    type: 'object',
    required: ['name', 'spec'],
    additionalProperties: false,
    properties: { name: { ...DNS_LABEL, description: `sandbox name (${DNS_LABEL.description}), e.g. pr-42` }, spec: spec as Record<string, unknown> },
  };
}

interface JsonSchema {
  description?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
}
const NAME_ONLY = (what: string) =>
  ({ type: 'object', required: ['name'], additionalProperties: false, properties: { name: { ...DNS_LABEL, description: `the ${what}'s name (${DNS_LABEL.description})` } } }) as const;
const EMPTY = { type: 'object', additionalProperties: false, properties: {} } as const;

interface Tool {
  readonly name: string;
  readonly description: string;
  readonly inputSchema: Record<string, unknown>;
  run(client: LanewayClient, input: Record<string, any>): Promise<string>;
}

/** Local lanes this MCP server holds (sandbox → lane): they live as long as the server process, and end with it. */
const lanes = new Map<string, LocalLane>();

async function connectLane(client: LanewayClient, input: Record<string, any>): Promise<string> {
  const ports = new Map<string, Target>();
  for (const [port, address] of Object.entries(input.ports as Record<string, string>)) {
    const target = parseHostPort(/^[0-9]{1,5}$/.test(address) ? `127.0.0.1:${address}` : address);
    if (target === undefined) throw new LanewayError('LANEWAY_ERR_INVALID_FIELD', 400, `ports.${port}: expected host:port of the local service`, `ports.${port}`);
    ports.set(String(Number(port)), target);
  }
  const exposures = ((input.expose as string[] | undefined) ?? []).map((spec, i) => {
    const target = exposeAddress(spec);
    if (target === undefined) throw new LanewayError('LANEWAY_ERR_INVALID_FIELD', 400, `expose[${i}]: expected <namespace>/<name>:<port> or host:port`, `expose[${i}]`);
    return { target, localPort: 0 };
  });
  await lanes.get(input.sandbox)?.close(true);
  const lane = await openLocalLane(client, tokenFromEnv(), { sandbox: input.sandbox, workload: input.workload, ports, exposures, ...(input.ttl === undefined ? {} : { ttl: input.ttl }) });
  lanes.set(input.sandbox, lane);
  return [
    `sandbox ${lane.sandbox} ${lane.result}; local lane connected (held by this MCP server until local_lane_disconnect or until it stops)`,
    `routing key: ${lane.key}`,
    `send header: baggage: laneway=${lane.key}`,
    ...[...ports].map(([port, target]) => `${lane.workload}:${port} -> ${target.address} on this machine`),
    ...lane.exposed.map((e) => `exposed ${e.target} at ${e.local} (call it from the local service, with the baggage header)`),
  ].join('\n');
}

const json = (value: unknown): string => JSON.stringify(value, null, 2);

function runText(run: Run): string {
  if (run.result !== null) return `${summarize(run.result)}\nrun id: ${run.id} (status ${run.status}); the full result (per-step inputs, outputs, assertions, diffs): run_get {"id": "${run.id}"}`;
  if (run.error !== null) return `run ${run.id} ended with an error: ${run.error.code}: ${run.error.message}`;
  return `run ${run.id} is ${run.status}; poll run_get {"id": "${run.id}"}`;
}

export const TOOLS: readonly Tool[] = [
  {
    name: 'sandbox_apply',
    description:
      'Create or replace a sandbox: requests carrying its routing key (W3C baggage laneway=<key>) go to the forks it lists instead of the baseline workloads. Idempotent. Returns the sandbox with its routing key and phase (Ready once every fork target accepts connections).',
    inputSchema: sandboxApplySchema(),
    run: async (client, input) => json((await client.applySandbox(input.name, input.spec)).sandbox),
  },
  {
    name: 'sandbox_list',
    description: 'List sandboxes with their routing keys, phases and forks.',
    inputSchema: EMPTY,
    run: async (client) => json(await client.listSandboxes()),
  },
  {
    name: 'sandbox_get',
    description: 'Get one sandbox: spec, routing key, phase and the health of each fork target (why it is Pending).',
    inputSchema: NAME_ONLY('sandbox'),
    run: async (client, input) => json(await client.getSandbox(input.name)),
  },
  {
    name: 'sandbox_delete',
    description: 'Delete a sandbox: its routing key goes back to the baseline everywhere.',
    inputSchema: NAME_ONLY('sandbox'),
    run: async (client, input) => json(await client.deleteSandbox(input.name)),
  },
  {
    name: 'local_lane_connect',
    description:
      "Fork a workload to a service running on this machine (a local lane): the cluster's requests carrying the sandbox's routing key reach it through one outbound connection. Creates or updates the sandbox and returns the routing key. The lane lasts until local_lane_disconnect or until this MCP server stops.",
    inputSchema: {
      type: 'object',
      required: ['sandbox', 'workload', 'ports'],
      additionalProperties: false,
      properties: {
        sandbox: { ...DNS_LABEL, description: 'sandbox name, e.g. pr-42' },
        workload: { ...WORKLOAD, description: 'the baseline workload to fork: <namespace>/<name>, e.g. default/orders' },
        ports: {
          type: 'object',
          minProperties: 1,
          propertyNames: { pattern: '^[0-9]{1,5}$' },
          additionalProperties: { type: 'string', maxLength: 300, description: 'host:port (or a port on 127.0.0.1) of the local service' },
          description: 'app port of the workload → the local service, e.g. {"8080": "127.0.0.1:3000"}',
        },
        expose: { type: 'array', maxItems: 16, items: { type: 'string', maxLength: 300 }, description: 'cluster services the local service may call, e.g. ["default/payments:8080"]; each gets a local port (returned)' },
        ttl: { type: 'string', pattern: DURATION_WITH_UNIT_PATTERN, description: 'optional sandbox TTL, e.g. 2h' },
      },
    },
    run: connectLane,
  },
  {
    name: 'local_lane_disconnect',
    description: 'End a local lane this MCP server holds: the local fork is removed (the sandbox too when it was its only fork) unless keep is true.',
    inputSchema: {
      type: 'object',
      required: ['sandbox'],
      additionalProperties: false,
      properties: { sandbox: DNS_LABEL, keep: { type: 'boolean', description: 'keep the local fork registered (its requests get 502 until a lane connects again)' } },
    },
    run: async (_client, input) => {
      const lane = lanes.get(input.sandbox);
      if (lane === undefined) throw new LanewayError('LANEWAY_ERR_SANDBOX_NOT_FOUND', 404, `this MCP server holds no local lane for sandbox ${input.sandbox}`, 'sandbox');
      lanes.delete(input.sandbox);
      return await lane.close(input.keep === true);
    },
  },
  {
    name: 'routes_get',
    description: "Get a baseline workload's route table as its sidecars use it: which routing key goes to which fork target.",
    inputSchema: {
      type: 'object',
      required: ['workload'],
      additionalProperties: false,
      properties: { workload: WORKLOAD },
    },
    run: async (client, input) => json(await client.routes(input.workload)),
  },
  {
    name: 'plans_list',
    description: 'List the validation plans stored on the control plane, with versions, tags, descriptions and parameters.',
    inputSchema: EMPTY,
    run: async (client) => json(await client.plans()),
  },
  {
    name: 'skills_list',
    description: `List skills: plan versions carrying a tag (default ${DEFAULT_SKILL_TAG}), with when to use each and its parameters. Run one with plan_run.`,
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      properties: { tag: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$', description: `the tag that marks skills (default ${DEFAULT_SKILL_TAG})` } },
    },
    run: async (client, input) => json(skillsOf(await client.plans(), input.tag ?? DEFAULT_SKILL_TAG)),
  },
  {
    name: 'plan_run',
    description:
      'Run a stored plan on the control plane against a sandbox and wait for the verdict. Deterministic: the same plan, params and system give the same verdict. Returns a summary naming each failed step, assertion and actual value, and the run id for run_get. Refused before any request if a parameter is wrong, the sandbox is unknown or the platform policy forbids the plan.',
    inputSchema: {
      type: 'object',
      required: ['plan', 'sandbox'],
      additionalProperties: false,
      properties: {
        plan: { ...DNS_LABEL, description: 'the plan (skill) name, from plans_list or skills_list' },
        version: { type: 'string', maxLength: 64, description: 'a version or tag (default: the latest version)' },
        sandbox: { ...DNS_LABEL, description: 'the sandbox whose routing key the requests carry' },
        params: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] }, description: "values for the plan's parameters; the others take their defaults" },
      },
    },
    run: async (client, input) => {
      const body = { sandbox: input.sandbox, wait: true, ...(input.version === undefined ? {} : { version: input.version }), ...(input.params === undefined ? {} : { params: input.params }) };
      return runText(await client.runPlan(input.plan, body));
    },
  },
  {
    name: 'runs_list',
    description: 'List server-side plan runs, newest first, with status and verdict (not the full result: run_get has it). Filter by plan, sandbox or status; page with the returned next cursor.',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        plan: DNS_LABEL,
        sandbox: DNS_LABEL,
        status: { type: 'string', enum: ['running', 'passed', 'failed', 'error'] },
        limit: { type: 'integer', minimum: 1, maximum: RUNS_PAGE_MAX },
        after: { type: 'string', maxLength: 40, description: 'the next cursor of an earlier page' },
      },
    },
    run: async (client, input) =>
      json(await client.listRuns({ ...(input.plan === undefined ? {} : { plan: input.plan }), ...(input.sandbox === undefined ? {} : { sandbox: input.sandbox }), ...(input.status === undefined ? {} : { status: input.status }) }, input.limit, input.after)),
  },
  {
    name: 'sandbox_traffic',
    description:
      "What the sidecars routed to a sandbox's forks (the sandbox needs spec.capture, e.g. {\"capture\": {\"bodyBytes\": 2048}} in sandbox_apply): one line per exchange (time, workload, method, path, status, duration, target), or the full entries with headers (credentials redacted) and body previews with detail: true. Pass the returned lastSeq as after to read only newer ones.",
    inputSchema: {
      type: 'object',
      required: ['name'],
      additionalProperties: false,
      properties: {
        name: DNS_LABEL,
        workload: { type: 'string', maxLength: 127, description: '<namespace>/<name>: only that workload' },
        status: { type: 'string', pattern: '^([1-5]xx|error)$', description: '2xx, 4xx, 5xx… or error' },
        after: { type: 'integer', minimum: 0, description: 'only entries after this seq' },
        limit: { type: 'integer', minimum: 1, maximum: 1000 },
        detail: { type: 'boolean', description: 'full entries (headers, bodies) instead of one line each' },
      },
    },
    run: async (client, input) => {
      const page = await client.traffic(input.name, {
        ...(input.workload === undefined ? {} : { workload: input.workload }),
        ...(input.status === undefined ? {} : { status: input.status }),
        ...(input.after === undefined ? {} : { after: input.after }),
        ...(input.limit === undefined ? {} : { limit: input.limit }),
      });
      if (input.detail === true) return json(page);
      const head = page.capture ? `${page.entries.length} entries (lastSeq ${page.lastSeq})` : `sandbox ${input.name} does not capture traffic: add "capture": {} to its spec with sandbox_apply`;
      return [head, ...page.entries.map((e) => trafficLine(e).trimEnd())].join('\n');
    },
  },
  {
    name: 'propagation_doctor',
    description:
      'Find where the routing key gets lost: sends one probe request through the mesh from the entry URL and reports, hop by hop, which workloads received the key and which call arrived at the next service without it (naming the service that does not propagate baggage, and why). Optionally says which of a sandbox\'s forked workloads the key reaches. Takes about 2 seconds.',
    inputSchema: {
      type: 'object',
      required: ['entry'],
      additionalProperties: false,
      properties: {
        entry: { type: 'string', maxLength: 2000, pattern: '^https?://', description: 'the entry service through its sidecar, e.g. http://web.default.svc:8080' },
        path: { type: 'string', maxLength: 2000, pattern: '^/', description: 'path of the probe request' },
        sandbox: DNS_LABEL,
      },
    },
    run: async (client, input) => (await runDoctor(client, { entry: input.entry, ...(input.path === undefined ? {} : { path: input.path }), ...(input.sandbox === undefined ? {} : { sandbox: input.sandbox }) })).text,
  },
  {
    name: 'run_get',
    description: "Get a run: status (running, passed, failed, error) and, once finished, the full structured result with each step's inputs, outputs, assertion results, timing and baseline/sandbox differences.",
    inputSchema: {
      type: 'object',
      required: ['id'],
      additionalProperties: false,
      properties: { id: { type: 'string', minLength: 1, maxLength: 64, description: 'the run id plan_run returned' } },
    },
    run: async (client, input) => json(await client.run(input.id)),
  },
];

/** What to do next, per error code: an agent acts on the message, so the message says how. */
const HINTS: Readonly<Record<string, string>> = {
  LANEWAY_ERR_SANDBOX_NOT_FOUND: 'call sandbox_list to see the sandboxes, or sandbox_apply to create it',
  LANEWAY_ERR_PLAN_NOT_FOUND: 'call plans_list to see the stored plans and their versions and tags',
  LANEWAY_ERR_RUN_NOT_FOUND: 'use the id plan_run returned; old runs are dropped',
  LANEWAY_ERR_PARAM_INVALID: "call plans_list to see the plan's parameters and their types",
  LANEWAY_ERR_POLICY_VIOLATION: 'the platform policy forbids this plan as written; choose another plan or ask the platform team',
  LANEWAY_ERR_SANDBOX_REQUIRED: 'pass the sandbox argument',
  LANEWAY_ERR_INVALID_FIELD: 'fix the named field and call again',
  LANEWAY_ERR_KEY_CONFLICT: 'choose another routingKey or omit it to get a generated one',
  LANEWAY_ERR_TARGET_NOT_ALLOWED: 'point the fork at a host the control plane allows (--allow-targets)',
  LANEWAY_ERR_UNAUTHENTICATED: 'set LANEWAY_TOKEN in the MCP server environment',
  LANEWAY_ERR_FORBIDDEN: 'this needs a writer token in LANEWAY_TOKEN',
  LANEWAY_ERR_CONTROL_PLANE: 'start the control plane (laneway control-plane) or set LANEWAY_URL in the MCP server environment',
  LANEWAY_ERR_RUNS_BUSY: 'retry in a few seconds',
  LANEWAY_ERR_PROBES_BUSY: 'retry propagation_doctor in a few seconds',
};

function errorText(err: unknown): string {
  if (err instanceof LanewayError) {
    const field = (err as { field?: string }).field;
    const hint = HINTS[err.code];
    return `${err.code}${err.status > 0 ? ` (HTTP ${err.status})` : ''}: ${err.message}${field !== undefined && !err.message.includes(field) ? ` [field ${field}]` : ''}${hint === undefined ? '' : `. Next: ${hint}.`}`;
  }
  return `internal error: ${err instanceof Error ? err.message : String(err)}`;
}

export async function runMcpServer(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, MCP_FLAGS);
  const client = new LanewayClient(serverFrom(values));
  const ajv = createAjv();
  const validators = new Map(TOOLS.map((t) => [t.name, ajv.compile(t.inputSchema)]));
  const version = lanewayVersion();

  const server = new Server({ name: 'laneway', version }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: TOOLS.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema as { type: 'object' } })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const tool = TOOLS.find((t) => t.name === request.params.name);
    if (tool === undefined) {
      return { isError: true, content: [{ type: 'text' as const, text: `unknown tool ${request.params.name}; the tools are ${TOOLS.map((t) => t.name).join(', ')}` }] };
    }
    const input = request.params.arguments ?? {};
    const validate = validators.get(tool.name)!;
    if (!validate(input)) {
      const { path, problem } = describeAjvError(validate.errors![0]!);
      return { isError: true, content: [{ type: 'text' as const, text: `invalid arguments for ${tool.name}: ${path}: ${problem}` }] };
    }
    try {
      return { content: [{ type: 'text' as const, text: await tool.run(client, input as Record<string, unknown>) }] };
    } catch (err) {
      return { isError: true, content: [{ type: 'text' as const, text: errorText(err) }] };
    }
  });
  // stdout carries the protocol from here on: nothing else may write to it.
  await server.connect(new StdioServerTransport());
  await new Promise<void>((resolve) => {
    server.onclose = resolve;
    process.stdin.once('end', resolve);
  });
  // The lanes end with the server: their local forks are removed, as with Ctrl-C on laneway connect.
  await Promise.all([...lanes.values()].map((lane) => lane.close().catch(() => {})));
}
