// `laneway doctor --entry <url>`: sends one probe through the mesh and names the service that drops the routing key.
import { LanewayClient, serverFrom, DEFAULT_SERVER } from '../client/api.js';
import { runDoctor } from '../client/doctor.js';
import { ConfigError } from '../core/errors.js';
import { parseFlags, type FlagSpec } from '../core/flags.js';
import { isDnsLabel } from '../core/names.js';

const FLAGS = Object.freeze({
  server: { type: 'string', env: 'LANEWAY_URL' },
  entry: { type: 'string', env: 'LANEWAY_DOCTOR_ENTRY' },
  path: { type: 'string', env: 'LANEWAY_DOCTOR_PATH' },
  sandbox: { type: 'string', env: 'LANEWAY_SANDBOX' },
  output: { type: 'string', short: 'o', env: 'LANEWAY_OUTPUT' },
  help: { type: 'boolean', short: 'h', env: 'LANEWAY_DOCTOR_HELP' },
} as const satisfies Record<string, FlagSpec>);

const USAGE = `usage: laneway doctor --entry <url> [--path /checkout] [--sandbox name] [-o text|json]

  sends one request with a fresh probe key (no route: it is served by the baselines) and reports,
  hop by hop, which workloads' sidecars saw the key and which call arrived without it
  --entry url     the entry service, through its sidecar (e.g. http://web.default.svc:8080)
  --path p        the request's path (default: the entry URL's)
  --sandbox name  also say which of the sandbox's forked workloads the key reached
  --server url    control plane (default ${DEFAULT_SERVER}; env LANEWAY_URL); a writer token in LANEWAY_TOKEN
  exit status: 0 the key reached every hop, 1 a hop dropped it or no sidecar saw it
  example: laneway doctor --entry http://127.0.0.1:8080 --path /checkout
`;

export async function runDoctorCommand(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, FLAGS);
  if (values.help === true) return void process.stdout.write(USAGE);
  const entry = values.entry;
  if (typeof entry !== 'string') throw new ConfigError('--entry', 'is required: the URL of the entry service');
  try {
    const url = new URL(entry);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new ConfigError('--entry', `expected an http:// URL, got '${entry}'`);
  }
  const path = values.path as string | undefined;
  if (path !== undefined && !path.startsWith('/')) throw new ConfigError('--path', `must start with /, got '${path}'`);
  const sandbox = values.sandbox as string | undefined;
  if (sandbox !== undefined && !isDnsLabel(sandbox)) throw new ConfigError('--sandbox', `not a sandbox name: '${sandbox}'`);
  const output = typeof values.output === 'string' ? values.output : 'text';
  if (output !== 'text' && output !== 'json') throw new ConfigError('--output', 'expected text or json');
  const report = await runDoctor(new LanewayClient(serverFrom(values)), { entry, ...(path === undefined ? {} : { path }), ...(sandbox === undefined ? {} : { sandbox }) });
  process.stdout.write(output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : report.text);
  if (!report.propagates) process.exitCode = 1;
}
