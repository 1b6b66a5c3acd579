// The optional CLI config file (`~/.config/laneway/config.yaml`): default server, token file and output, below flags and env.
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from '../core/errors.js';

/** A token file may be at most this large; a token is a line, anything bigger is the wrong file. */
const MAX_TOKEN_FILE_BYTES = 4096;
/** The config file is a few lines; reading a huge file by mistake should fail, not hang. */
const MAX_CONFIG_FILE_BYTES = 64 * 1024;

export interface CliConfig {
  /** the control plane URL, like `--server` / LANEWAY_URL */
  readonly server?: string;
  /** a file holding the bearer token (mode 0600); the token itself never goes in this file or on a command line */
  readonly tokenFile?: string;
  /** the default `-o` of commands that accept it (others keep their own default) */
  readonly output?: string;
}

const KEYS = new Set(['server', 'tokenFile', 'output']);

/** `LANEWAY_CONFIG`, else `$XDG_CONFIG_HOME/laneway/config.yaml`, else `~/.config/laneway/config.yaml`. */
export function configPath(env: NodeJS.ProcessEnv): string {
  if (env.LANEWAY_CONFIG !== undefined && env.LANEWAY_CONFIG !== '') return env.LANEWAY_CONFIG;
  const base = env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'laneway', 'config.yaml');
}

/** The file's settings; none when it does not exist. Anything else wrong with it is a ConfigError naming the file and key. */
export function loadCliConfig(env: NodeJS.ProcessEnv): CliConfig {
  const path = configPath(env);
  let text: string;
  try {
    if (statSync(path).size > MAX_CONFIG_FILE_BYTES) throw new ConfigError(path, `larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ConfigError(path, `not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(path, 'expected a mapping of server, tokenFile, output');
  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'token') throw new ConfigError(`${path}: token`, 'put the token in a file of its own (mode 0600) and name it as tokenFile');
    if (!KEYS.has(key)) throw new ConfigError(`${path}: ${key}`, 'unknown key (expected server, tokenFile, output)');
    if (typeof value !== 'string' || value === '') throw new ConfigError(`${path}: ${key}`, 'expected a non-empty string');
    config[key] = value;
  }
  return config;
}

function readToken(file: string): string {
  let stat;
  try {
    stat = statSync(file);
  } catch (err) {
    throw new ConfigError(`tokenFile ${file}`, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  // As ssh does with keys: a token others can read is a leaked token.
  if ((stat.mode & 0o077) !== 0) throw new ConfigError(`tokenFile ${file}`, `readable by others (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it`);
  if (stat.size > MAX_TOKEN_FILE_BYTES) throw new ConfigError(`tokenFile ${file}`, `larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
  return readFileSync(file, 'utf8').trim();
}

/**
 * Fills the environment the client commands read (LANEWAY_URL, LANEWAY_TOKEN) where it is unset, so the precedence is
 * flag > environment > config file > built-in default. The output default goes to LANEWAY_CONFIG_OUTPUT: a command
 * that does not accept it keeps its own default instead of failing.
 */
export function applyCliConfig(env: NodeJS.ProcessEnv): void {
  const config = loadCliConfig(env);
  if (config.server !== undefined && (env.LANEWAY_URL ?? '') === '') env.LANEWAY_URL = config.server;
  if (config.tokenFile !== undefined && (env.LANEWAY_TOKEN ?? '') === '') env.LANEWAY_TOKEN = readToken(config.tokenFile.replace(/^~(?=\/)/, homedir()));
  if (config.output !== undefined) env.LANEWAY_CONFIG_OUTPUT = config.output;
}
