// `laneway sandbox apply|list|get|delete` and `laneway routes <ns>/<name>`: a thin client of the control plane API.
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { DEFAULT_SERVER, LanewayClient, serverFrom } from '../client/api.js';
import { parseSandboxFile } from '../client/sandbox-file.js';
import { table } from './table.js';
import { DEFAULT_ROUTING_KEY_NAME } from '../core/constants.js';
import { ConfigError } from '../core/errors.js';
import { parseDurationMs, parseFlags, parseSubcommand, type FlagSpec } from '../core/flags.js';
import { isDnsLabel, isWorkloadName } from '../core/names.js';
import { describeWaiting, waitReady as waitSandboxReady } from '../validate/actions/wait.js';
import { ValidateError } from '../validate/errors.js';


/** The baggage member the sidecar reads by default (README: `baggage: laneway=<key>`). */
const BAGGAGE_KEY = DEFAULT_ROUTING_KEY_NAME;

// Explicit env names: the token and server are the only settings meant to come from the environment.
const FLAGS = Object.freeze({
  server: { type: 'string', env: 'LANEWAY_URL' },
  file: { type: 'string', short: 'f', env: 'LANEWAY_SANDBOX_FILE' },
  wait: { type: 'boolean', env: 'LANEWAY_SANDBOX_WAIT' },
  timeout: { type: 'string', env: 'LANEWAY_WAIT_TIMEOUT' },
  output: { type: 'string', short: 'o', env: 'LANEWAY_OUTPUT' },
  help: { type: 'boolean', short: 'h', env: 'LANEWAY_SANDBOX_HELP' },
} as const satisfies Record<string, FlagSpec>);

const SANDBOX_USAGE = `usage: laneway sandbox <command> [flags]

  apply -f <file|-> [--wait] [--timeout 2m]   create or replace the sandboxes in a YAML or JSON file
  list [-o json]                               list sandboxes
  get <name> [-o yaml|json]                    show one sandbox with its status
  delete <name>                                delete a sandbox (its routes disappear everywhere)

  --server url    control plane (default ${DEFAULT_SERVER}; env LANEWAY_URL)
  The bearer token is read from LANEWAY_TOKEN (never a flag: flags show up in ps and shell history).
`;

const ROUTES_USAGE = `usage: laneway routes <namespace>/<name> [-o json] [--server url]
  show a workload's route table (-o json prints it in the sidecar's routes-file format)
`;

function clientFrom(values: Record<string, unknown>): LanewayClient {
  return new LanewayClient(serverFrom(values));
}

function outputFormat(values: Record<string, unknown>, allowed: readonly string[], fallback: string): string {
  const output = typeof values.output === 'string' ? values.output : fallback;
  if (!allowed.includes(output)) throw new ConfigError('--output', `expected one of ${allowed.join(', ')}`);
  return output;
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
  const parsed = parseSubcommand(argv, FLAGS, SANDBOX_USAGE);
  if (parsed === undefined) return;
  const { values, command, args } = parsed;
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
      const output = outputFormat(values, ['table', 'json'], 'table');
      const json = await client.listSandboxes();
      if (output === 'json') {
        process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
        return;
      }
      if (json.items.length === 0) {
        process.stdout.write('no sandboxes\n');
        return;
      }
      const rows = [['NAME', 'ROUTING KEY', 'PHASE', 'REVISION', 'WORKLOADS', 'EXPIRES']];
      for (const s of json.items) {
        rows.push([s.name, s.status.routingKey, s.status.phase, String(s.status.revision), s.spec.forks.map((f) => f.workload).join(','), age(s.status.expiresAt)]);
      }
      process.stdout.write(table(rows));
      return;
    }
    case 'get': {
      const name = nameArg();
      const output = outputFormat(values, ['yaml', 'json'], 'yaml');
      const json = await client.getSandbox(name);
      process.stdout.write(output === 'json' ? `${JSON.stringify(json, null, 2)}\n` : stringify(json));
      return;
    }
    case 'delete': {
      const name = nameArg();
      const json = await client.deleteSandbox(name);
      process.stdout.write(`sandbox/${name} deleted (revision ${json.revision})\n`);
      return;
    }
    default:
      throw new ConfigError(command, `unknown sandbox command (expected apply, list, get or delete)\n${SANDBOX_USAGE}`);
  }
}

export async function runRoutesCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(argv, { server: FLAGS.server, output: FLAGS.output, help: FLAGS.help }, process.env, true);
  if (values.help === true) {
    process.stdout.write(ROUTES_USAGE);
    return;
  }
  const workload = positionals[0];
  if (workload === undefined || positionals.length > 1 || !isWorkloadName(workload)) {
    throw new ConfigError('routes', `expected <namespace>/<name>, got '${positionals.join(' ')}'`);
  }
  const output = outputFormat(values, ['table', 'json'], 'table');
  const client = clientFrom(values);
  const json = await client.routes(workload);
  if (output === 'json') {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${json.workload} revision ${json.revision}, ${json.routes.length} route${json.routes.length === 1 ? '' : 's'}\n`);
  if (json.routes.length === 0) return;
  const rows = [['KEY', 'SANDBOX', 'PORT', 'TARGET']];
  for (const route of json.routes) {
    for (const [port, target] of Object.entries(route.targets)) rows.push([route.key, route.sandbox, port, target]);
  }
  process.stdout.write(table(rows));
}
