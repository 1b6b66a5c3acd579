#!/usr/bin/env node
// The `laneway` command: help and completion from the command table, then dispatch to the sidecar, the control plane and the client commands.
import { ConfigError, LanewayError } from '../core/errors.js';
import type { CommandInfo } from './commands.js';
import { EXIT, exitCodeOf } from './exit-codes.js';

type Command = (argv: string[]) => Promise<void>;

const commands: Record<string, () => Promise<Command>> = {
  // each command loads only its own modules, so `laneway sidecar` starts without Fastify or SQLite
  'control-plane': async () => (await import('./server.js')).runServer,
  sandbox: async () => (await import('./sandbox.js')).runSandboxCommand,
  routes: async () => (await import('./sandbox.js')).runRoutesCommand,
  connect: async () => (await import('./connect.js')).runConnectCommand,
  sidecar: async () => (await import('../proxy/main.js')).runSidecar,
  demo: async () => (await import('../demo/main.js')).runDemo,
  plan: async () => (await import('./plan.js')).runPlanCommand,
  skills: async () => (await import('./skills.js')).runSkillsCommand,
  run: async () => (await import('./run.js')).runRunCommand,
  traffic: async () => (await import('./traffic.js')).runTrafficCommand,
  doctor: async () => (await import('./doctor.js')).runDoctorCommand,
  mcp: async () => (await import('./mcp.js')).runMcpServer,
  completion: async () => (await import('./completion.js')).runCompletionCommand,
  __complete: async () => (await import('./completion.js')).runCompleteCommand,
};

/** Commands whose first word is a verb (`sandbox apply`). */
const NOUNS = new Set(['sandbox', 'plan', 'skills', 'run']);

/** The commands that talk to a control plane as a client: the config file's server and token apply to them only. */
const CLIENT_COMMANDS = new Set(['sandbox', 'routes', 'connect', 'plan', 'skills', 'run', 'traffic', 'doctor', 'mcp', '__complete']);

async function commandTable(): Promise<readonly CommandInfo[]> {
  const [{ commandTable: build }, { SIDECAR_FLAGS }, { FLAGS }] = await Promise.all([import('./commands.js'), import('../proxy/config.js'), import('../control-plane/config.js')]);
  return build(SIDECAR_FLAGS, FLAGS);
}

/**
 * The words `--help` asks about: the command and, when the next positional names one of its subcommands, that too.
 * Only tokens before `--` count (after it, they belong to the command `laneway connect` runs).
 */
function helpRequested(argv: readonly string[], info: CommandInfo | undefined): string[] {
  const end = argv.indexOf('--');
  const own = end === -1 ? argv : argv.slice(0, end);
  const words: string[] = [];
  for (let i = 0; i < own.length; i++) {
    const token = own[i]!;
    if (token.startsWith('-')) {
      // a string flag's value is the next token unless given as --flag=value
      const spec = info?.flags[token.replace(/^-+/, '')] ?? Object.values(info?.flags ?? {}).find((s) => s.short === token.slice(1));
      if (spec?.type === 'string' && !token.includes('=')) i++;
      continue;
    }
    words.push(token);
    break;
  }
  return words;
}

/**
 * `laneway --server <url> <command> …`: the global flag before the command, as kubectl and gh take theirs. It sets
 * LANEWAY_URL, so a `--server` after the command still wins, as a flag wins over the environment.
 */
function leadingServer(argv: string[]): string[] {
  let i = 0;
  while (argv[i] === '--server' || argv[i]?.startsWith('--server=')) {
    const value = argv[i] === '--server' ? argv[i + 1] : argv[i]!.slice('--server='.length);
    if (value === undefined || value === '') throw new ConfigError('--server', 'needs a value');
    process.env.LANEWAY_URL = value;
    i += argv[i] === '--server' ? 2 : 1;
  }
  return argv.slice(i);
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = leadingServer(argv);
  const own = rest.indexOf('--') === -1 ? rest : rest.slice(0, rest.indexOf('--'));
  const helpFlag = own.includes('-h') || own.includes('--help');
  if (name === undefined || name === '--help' || name === '-h' || (name === 'help' && own.every((a) => a.startsWith('-')) && !helpFlag)) {
    const { renderUsage } = await import('./help.js');
    process.stdout.write(renderUsage(await commandTable()));
    return;
  }
  if (name === 'help') {
    const { findCommand, renderHelp } = await import('./help.js');
    const table = await commandTable();
    const words = own.filter((a) => !a.startsWith('-'));
    const command = findCommand(table, words.length === 0 ? ['help'] : words);
    if (command === undefined) {
      process.stderr.write(`laneway: help: unknown command '${words[0]}'\n`);
      process.exit(EXIT.USAGE);
    }
    process.stdout.write(renderHelp(command));
    return;
  }
  if ((name === 'version' || name === '--version') && !helpFlag) {
    process.stdout.write(`${(await import('../core/version.js')).versionLine()}\n`);
    return;
  }
  const load = commands[name];
  if (!load && name !== 'version') {
    const { renderUsage } = await import('./help.js');
    process.stderr.write(`laneway: unknown command '${name}'\n${renderUsage(await commandTable())}`);
    process.exit(EXIT.USAGE);
  }
  // A noun without its verb (`laneway sandbox`) answers with its help, as kubectl and gh do.
  const bareNoun = NOUNS.has(name) && own.every((a) => a.startsWith('-'));
  // The table is loaded only for help: `laneway sidecar` loads nothing of the control plane.
  if (name !== '__complete' && (bareNoun || helpFlag)) {
    const { findCommand, renderHelp } = await import('./help.js');
    const table = await commandTable();
    const info = findCommand(table, [name])!;
    process.stdout.write(renderHelp(findCommand(table, [name, ...helpRequested(rest, info)]) ?? info));
    return;
  }
  if (CLIENT_COMMANDS.has(name)) (await import('./config-file.js')).applyCliConfig(process.env);
  const command = await load!();
  await command(rest);
}

main(process.argv.slice(2)).catch(async (failure: unknown) => {
  const code = exitCodeOf(failure);
  if (failure instanceof LanewayError && failure.code === 'LANEWAY_ERR_CONFIG') {
    process.stderr.write(`${failure.message}\n`);
    process.exit(code);
  }
  // An API error reads `<server message> (<code> <status>)`; loaded only now, so commands that never call the API stay light.
  const err = (await import('../client/api.js')).forTerminal(failure);
  process.stderr.write(`laneway: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(code);
});
