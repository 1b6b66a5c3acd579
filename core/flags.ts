// Command-line flags with `LANEWAY_*` environment fallbacks, parsed once; every mistake becomes a ConfigError naming the flag.
import { parseArgs } from 'node:util';
import { ConfigError } from './errors.js';
import { DURATION_SYNTAX, parseDuration } from './units.js';

export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  /** repeatable (`--port a --port b`); from the environment as a comma-separated list */
  readonly multiple?: boolean;
  /** environment variable; default `LANEWAY_<FLAG_NAME>` */
  readonly env?: string;
  readonly short?: string;
  /** what the flag does, one line, for `--help` (defaults and env names are printed by the help, not repeated here) */
  readonly doc?: string;
  /** the value's placeholder in help (`url`, `dur`); default `value` */
  readonly arg?: string;
  /** the default as help shows it; the parser's own default is the truth (a golden test keeps them in step) */
  readonly default?: string;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export function envName(flag: string): string {
  return `LANEWAY_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * Flags win over the environment. Unknown flags, missing values and stray positionals are
 * configuration errors (exit 2), never silently ignored.
 */
export function parseFlags(
  argv: readonly string[],
  specs: Readonly<Record<string, FlagSpec>>,
  env: NodeJS.ProcessEnv = process.env,
  allowPositionals = false,
): { values: FlagValues; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.type, ...(spec.multiple ? { multiple: true } : {}), ...(spec.short ? { short: spec.short } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals });
  } catch (err) {
    throw toConfigError(err as Error & { code?: string });
  }
  const values: FlagValues = { ...(parsed.values as FlagValues) };
  for (const [name, spec] of Object.entries(specs)) {
    if (values[name] !== undefined) continue;
    const raw = env[spec.env ?? envName(name)];
    if (raw === undefined || raw === '') continue;
    if (spec.type === 'boolean') values[name] = raw === '1' || raw.toLowerCase() === 'true';
    else if (spec.multiple) values[name] = raw.split(',').map((s) => s.trim()).filter(Boolean);
    else values[name] = raw;
  }
  return { values, positionals: parsed.positionals };
}

function toConfigError(err: Error & { code?: string }): ConfigError {
  const flag = /'(-{1,2}[^' ]+)/.exec(err.message)?.[1] ?? 'arguments';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new ConfigError(flag, 'unknown flag');
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return new ConfigError(flag, 'needs a value');
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new ConfigError(flag, 'unexpected argument');
    default:
      return new ConfigError(flag, err.message.split('\n')[0] ?? 'invalid');
  }
}

/** `host:port` for listeners; `flag` names the flag in the error. */
export function parseListenAddress(flag: string, value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(':');
  const host = colon > 0 ? value.slice(0, colon).replace(/^\[|\]$/g, '') : '';
  const port = Number(value.slice(colon + 1));
  if (!host || !/^[0-9]{1,5}$/.test(value.slice(colon + 1)) || port > 65535) {
    throw new ConfigError(flag, `expected host:port, got '${value}'`);
  }
  return { host, port };
}

/** A duration flag (`1500ms`, `5s`, `2m`, `1h`, plain milliseconds); a malformed one is a ConfigError naming the flag. */
export function parseDurationMs(flag: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new ConfigError(flag, `expected ${DURATION_SYNTAX}, got '${value}'`);
  return ms;
}

export function parsePositiveInt(flag: string, value: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new ConfigError(flag, `expected an integer 1-${max}, got '${value}'`);
  }
  return Number(value);
}

/**
 * `laneway <noun> <verb> [args] [flags]`: parses flags (positionals allowed) and splits off the verb.
 * `--help` and a missing verb never get here: the CLI's entry point answers them from the command registry.
 */
export function parseSubcommand(
  argv: readonly string[],
  specs: Readonly<Record<string, FlagSpec>>,
  noun: string,
): { values: FlagValues; command: string; args: string[] } {
  const { values, positionals } = parseFlags(argv, specs, process.env, true);
  const [command, ...args] = positionals;
  if (command === undefined) throw new ConfigError(noun, `needs a command (laneway help ${noun})`);
  return { values, command, args };
}
