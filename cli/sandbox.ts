// `laneway sandbox apply|list|get|delete` and `laneway routes <ns>/<name>`: a thin client of the control plane API.
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { LanewayClient, serverFrom, type SandboxResource } from '../client/api.js';
import { parseSandboxFile } from '../client/sandbox-file.js';
import { RESOURCE_FORMATS, ROUTES_FLAGS, SANDBOX_FLAGS } from './commands.js';
import { outputFormat, printResources, type ResourceView } from './output.js';
import { DEFAULT_ROUTING_KEY_NAME } from '../core/constants.js';
import { ConfigError } from '../core/errors.js';
import { parseDurationMs, parseFlags, parseSubcommand } from '../core/flags.js';
import { isDnsLabel, isWorkloadName } from '../core/names.js';
import { describeWaiting, waitReady as waitSandboxReady } from '../validate/actions/wait.js';
import { ValidateError } from '../validate/errors.js';


/** The baggage member the sidecar reads by default (README: `baggage: laneway=<key>`). */
const BAGGAGE_KEY = DEFAULT_ROUTING_KEY_NAME;

function clientFrom(values: Record<string, unknown>): LanewayClient {
  return new LanewayClient(serverFrom(values));
}

function readSource(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** `--wait`: the plan `wait` action's poll, printing each change of progress on stderr. */
async function waitReady(client: LanewayClient, name: string, timeoutMs: number): Promise<void> {
  let last = '';
  try {
    await waitSandboxReady(client.sandboxes(), name, timeoutMs, undefined, (view) => {
      const line = describeWaiting(view);
      if (line !== last) process.stderr.write(`waiting for sandbox/${name}: ${line}\n`);
      last = line;
    });
  } catch (err) {
    if (err instanceof ValidateError && err.code === 'LANEWAY_ERR_SANDBOX_NOT_READY' && last !== '') {
      throw new Error(`sandbox/${name} not Ready after ${Math.round(timeoutMs / 1000)}s: ${last}`);
    }
    throw err;
  }
  process.stdout.write(`sandbox/${name} is Ready\n`);
}

async function apply(client: LanewayClient, values: Record<string, unknown>): Promise<void> {
  if (typeof values.file !== 'string') throw new ConfigError('-f', 'apply needs -f <file> (or -f - for stdin)');
  const timeoutMs = parseDurationMs('--timeout', typeof values.timeout === 'string' ? values.timeout : '2m');
  for (const { name, spec } of parseSandboxFile(values.file, readSource(values.file))) {
    const { result, sandbox } = await client.applySandbox(name, spec);
    const key = sandbox.status.routingKey;
    process.stdout.write(
      `sandbox/${name} ${result} (revision ${sandbox.status.revision})\n` +
        `routing key: ${key}\n` +
        `send header: baggage: ${BAGGAGE_KEY}=${key}\n`,
    );
    if (values.wait === true) await waitReady(client, name, timeoutMs);
  }
}

function age(iso: string | null): string {
  if (iso === null) return '-';
  const ms = Date.parse(iso) - Date.now();
  const abs = Math.abs(ms);
  // Switch units at 1.5× (90s, 90m, 36h) so a TTL of 2h shows as "2h", not "120m", a second after apply.
  const text =
    abs < 90_000 ? `${Math.round(abs / 1000)}s` : abs < 5_400_000 ? `${Math.round(abs / 60_000)}m` : abs < 129_600_000 ? `${Math.round(abs / 3_600_000)}h` : `${Math.round(abs / 86_400_000)}d`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

export async function runSandboxCommand(argv: string[]): Promise<void> {
  const { values, command, args } = parseSubcommand(argv, SANDBOX_FLAGS, 'sandbox');
  const client = clientFrom(values);
  const nameArg = (): string => {
    const name = args[0];
    if (name === undefined || args.length > 1) throw new ConfigError(command, 'expects exactly one sandbox name');
    if (!isDnsLabel(name)) throw new ConfigError(command, `'${name}' is not a sandbox name (DNS-1123 label)`);
    return name;
  };
  switch (command) {
    case 'apply':
      if (args.length > 0) throw new ConfigError('apply', `unexpected argument '${args[0]}' (use -f <file>)`);
      return apply(client, values);
    case 'list': {
      const format = outputFormat(values, RESOURCE_FORMATS);
      const json = await client.listSandboxes();
      printResources(format, json.items, json, SANDBOXES, values['no-headers'] === true);
      return;
    }
    case 'get': {
      const name = nameArg();
      const format = outputFormat(values, ['yaml', 'json', 'table', 'name']);
      const json = await client.getSandbox(name);
      if (format === 'yaml') process.stdout.write(stringify(json));
      else printResources(format, [json], json, SANDBOXES, values['no-headers'] === true);
      return;
    }
    case 'delete': {
      const name = nameArg();
      const json = await client.deleteSandbox(name);
      process.stdout.write(`sandbox/${name} deleted (revision ${json.revision})\n`);
      return;
    }
    default:
      throw new ConfigError(command, 'unknown sandbox command (expected apply, list, get or delete; laneway help sandbox)');
  }
}

/** A sandbox in a table: what `kubectl get` would show of it. */
const SANDBOXES: ResourceView<SandboxResource> = {
  kind: 'sandbox',
  name: (s) => s.name,
  columns: [
    ['NAME', (s) => s.name],
    ['ROUTING KEY', (s) => s.status.routingKey],
    ['PHASE', (s) => s.status.phase],
    ['REVISION', (s) => String(s.status.revision)],
    ['WORKLOADS', (s) => s.spec.forks.map((f) => f.workload).join(',')],
    ['EXPIRES', (s) => age(s.status.expiresAt)],
  ],
  empty: 'no sandboxes',
};

/** One row per (route, port): a route with two forked ports is two rows. */
interface RouteRow {
  readonly key: string;
  readonly sandbox: string;
  readonly port: string;
  readonly target: string;
}

const ROUTES: ResourceView<RouteRow> = {
  kind: 'route',
  name: (r) => `${r.sandbox}:${r.port}`,
  columns: [
    ['KEY', (r) => r.key],
    ['SANDBOX', (r) => r.sandbox],
    ['PORT', (r) => r.port],
    ['TARGET', (r) => r.target],
  ],
  empty: 'no routes',
};

export async function runRoutesCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(argv, ROUTES_FLAGS, process.env, true);
  const workload = positionals[0];
  if (workload === undefined || positionals.length > 1 || !isWorkloadName(workload)) {
    throw new ConfigError('routes', `expected <namespace>/<name>, got '${positionals.join(' ')}'`);
  }
  const format = outputFormat(values, RESOURCE_FORMATS);
  const json = await clientFrom(values).routes(workload);
  const rows: RouteRow[] = [];
  for (const route of json.routes) {
    for (const [port, target] of Object.entries(route.targets)) rows.push({ key: route.key, sandbox: route.sandbox, port, target: String(target) });
  }
  const noHeaders = values['no-headers'] === true;
  if (format === 'table' && !noHeaders) process.stdout.write(`${json.workload} revision ${json.revision}, ${json.routes.length} route${json.routes.length === 1 ? '' : 's'}\n`);
  if (format === 'table' && rows.length === 0) return;
  printResources(format, rows, json, ROUTES, noHeaders);
}
