// `--help`, `laneway help <command>` and the top-level usage, rendered from the command table so they cannot drift from the parsers.
import { envName, type FlagSpec } from '../core/flags.js';
import type { CommandInfo } from './commands.js';

/** The command a `laneway help …` or `laneway … --help` names: the deepest match of its words (`sandbox apply`). */
export function findCommand(table: readonly CommandInfo[], words: readonly string[]): CommandInfo | undefined {
  const top = table.find((c) => c.path === words[0]);
  if (top === undefined || words.length < 2) return top;
  return top.subcommands?.find((c) => c.path === `${top.path} ${words[1]}`) ?? top;
}

/** `-f, --file <file|->` as the flag column shows it. */
export function flagLabel(name: string, spec: FlagSpec): string {
  const short = spec.short === undefined ? '    ' : `-${spec.short}, `;
  return `${short}--${name}${spec.type === 'string' ? ` <${spec.arg ?? 'value'}>` : ''}`;
}

function flagLines(flags: Readonly<Record<string, FlagSpec>>): string[] {
  const rows = Object.entries(flags).map(([name, spec]) => {
    const env = spec.env === '' ? '' : `env ${spec.env ?? envName(name)}`;
    const notes = [spec.default === undefined ? '' : `default ${spec.default}`, spec.multiple ? 'repeatable' : '', env].filter(Boolean).join('; ');
    return [flagLabel(name, spec), `${spec.doc ?? ''}${notes === '' ? '' : ` (${notes})`}`] as const;
  });
  rows.push(['-h, --help', 'this help']);
  const width = Math.min(34, Math.max(...rows.map(([label]) => label.length)));
  return rows.map(([label, text]) => (label.length > width ? `  ${label}\n  ${''.padEnd(width)}  ${text}` : `  ${label.padEnd(width)}  ${text}`));
}

export function renderHelp(command: CommandInfo): string {
  const out = [`laneway ${command.path}: ${command.summary}`, '', `usage: laneway ${command.usage}`];
  if (command.details !== undefined) out.push('', command.details);
  if (command.subcommands !== undefined) {
    out.push('', 'commands:');
    const width = Math.max(...command.subcommands.map((c) => c.path.length));
    for (const sub of command.subcommands) out.push(`  ${sub.path.padEnd(width)}  ${sub.summary}`);
    out.push('', `Run 'laneway ${command.path} <command> --help' for a command's flags.`);
  }
  out.push('', 'flags:', ...flagLines(command.flags));
  out.push('', 'example:', `  ${command.example}`, '');
  return out.join('\n');
}

export function renderUsage(table: readonly CommandInfo[]): string {
  const width = Math.max(...table.map((c) => c.path.length));
  return [
    'usage: laneway <command> [flags]',
    '',
    'commands:',
    ...table.map((c) => `  ${c.path.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'laneway help <command>' or 'laneway <command> --help' for its flags.",
    'Exit codes: 0 ok, 1 failed (a failing verdict, a rejected request), 2 usage or invalid input, 3 control plane unreachable or token refused.',
    '',
  ].join('\n');
}
