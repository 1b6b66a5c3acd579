// `laneway doctor --entry <url>`: sends one probe through the mesh and names the service that drops the routing key.
import { LanewayClient, serverFrom } from '../client/api.js';
import { runDoctor } from '../client/doctor.js';
import { ConfigError } from '../core/errors.js';
import { parseFlags } from '../core/flags.js';
import { DOCTOR_FLAGS } from './commands.js';
import { outputFormat } from './output.js';
import { isDnsLabel } from '../core/names.js';

export async function runDoctorCommand(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, DOCTOR_FLAGS);
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
  const output = outputFormat(values, ['text', 'json']);
  const report = await runDoctor(new LanewayClient(serverFrom(values)), { entry, ...(path === undefined ? {} : { path }), ...(sandbox === undefined ? {} : { sandbox }) });
  process.stdout.write(output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : report.text);
  if (!report.propagates) process.exitCode = 1;
}
