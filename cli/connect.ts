// `laneway connect`: fork a workload to a service on this machine through one outbound tunnel; Ctrl-C disconnects and undoes the fork.
import { spawn, type ChildProcess } from 'node:child_process';
import { LanewayClient, serverFrom } from '../client/api.js';
import type { LaneState } from '../client/lane-agent.js';
import { openLocalLane } from '../client/local-lane.js';
import { DEFAULT_ROUTING_KEY_NAME } from '../core/constants.js';
import { ConfigError } from '../core/errors.js';
import { parseFlags } from '../core/flags.js';
import { CONNECT_FLAGS } from './commands.js';
import { isDnsLabel, isWorkloadName } from '../core/names.js';
import { exposeAddress } from '../model/lanes.js';
import { parseHostPort, type Target } from '../model/route-table.js';

export interface ConnectRequest {
  readonly sandbox: string;
  readonly workload: string;
  /** app port → local target */
  readonly ports: ReadonlyMap<string, Target>;
  readonly ttl: string | undefined;
}

function parsePortMapping(text: string): [string, Target] {
  const eq = text.indexOf('=');
  const appPort = text.slice(0, eq);
  const local = text.slice(eq + 1);
  if (eq <= 0 || !/^[0-9]{1,5}$/.test(appPort) || Number(appPort) < 1 || Number(appPort) > 65535) {
    throw new ConfigError('--port', `expected <app port>=<host:port>, got '${text}'`);
  }
  const target = parseHostPort(/^[0-9]{1,5}$/.test(local) ? `127.0.0.1:${local}` : local);
  if (target === undefined) throw new ConfigError('--port', `expected <app port>=<host:port>, got '${text}'`);
  return [String(Number(appPort)), target];
}

function parseExposure(text: string): { target: string; localPort: number } {
  const eq = text.lastIndexOf('=');
  const local = eq === -1 ? '0' : text.slice(eq + 1);
  const target = exposeAddress(eq === -1 ? text : text.slice(0, eq));
  if (target === undefined || !/^[0-9]{1,5}$/.test(local) || Number(local) > 65535) {
    throw new ConfigError('--expose', `expected <namespace>/<name>:<port> or host:port, optionally =<local port>; got '${text}'`);
  }
  return { target, localPort: Number(local) };
}

export async function runConnectCommand(argv: string[]): Promise<void> {
  const dash = argv.indexOf('--');
  const command = dash === -1 ? [] : argv.slice(dash + 1);
  const { values, positionals } = parseFlags(dash === -1 ? argv : argv.slice(0, dash), CONNECT_FLAGS, process.env, true);
  if (positionals.length > 0) throw new ConfigError('connect', `unexpected argument '${positionals[0]}' (a command to run goes after --)`);
  const sandbox = values.sandbox;
  if (typeof sandbox !== 'string' || !isDnsLabel(sandbox)) throw new ConfigError('--sandbox', 'required: the sandbox name (DNS-1123 label)');
  const workload = values.workload;
  if (typeof workload !== 'string' || !isWorkloadName(workload)) throw new ConfigError('--workload', 'required: <namespace>/<name> of the workload to fork');
  const portFlags = (values.port as string[] | undefined) ?? [];
  if (portFlags.length === 0) throw new ConfigError('--port', 'at least one --port <app port>=<host:port>');
  const ports = new Map(portFlags.map(parsePortMapping));
  const exposures = ((values.expose as string[] | undefined) ?? []).map(parseExposure);
  if (command.length === 0 && dash !== -1) throw new ConfigError('--', 'expected a command after --');

  const client = new LanewayClient(serverFrom(values));
  let lane;
  try {
    lane = await openLocalLane(client, process.env.LANEWAY_TOKEN || undefined, {
      sandbox,
      workload,
      ports,
      exposures,
      ...(typeof values.ttl === 'string' ? { ttl: values.ttl } : {}),
      onState: report,
      warn: (message) => process.stderr.write(`laneway: ${message}\n`),
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'LANEWAY_ERR_CONFIG') throw new ConfigError('--expose', (err as Error).message);
    throw err;
  }
  const { key, result, exposed } = lane;
  const undo = async (): Promise<void> => {
    process.stderr.write(`${await lane.close(values.keep === true)}\n`);
  };
  process.stdout.write(
    `sandbox/${sandbox} ${result} (revision ${lane.revision}); local lane connected\n` +
      `routing key: ${key}\n` +
      `send header: baggage: ${DEFAULT_ROUTING_KEY_NAME}=${key}\n` +
      [...ports].map(([port, target]) => `${workload}:${port} -> ${target.address} (this machine)\n`).join('') +
      exposed.map((e) => `exposed ${e.target} at ${e.local}\n`).join(''),
  );

  let child: ChildProcess | null = null;
  const done = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (code: number): void => {
      if (stopping) return;
      stopping = true;
      if (child !== null && child.exitCode === null) child.kill('SIGTERM');
      undo().then(
        () => resolve(code),
        (err: unknown) => {
          process.stderr.write(`laneway: disconnecting: ${err instanceof Error ? err.message : String(err)}\n`);
          resolve(code === 0 ? 1 : code);
        },
      );
    };
    process.once('SIGINT', () => stop(0));
    process.once('SIGTERM', () => stop(0));
    if (command.length > 0) {
      const first = [...ports.values()][0]!;
      child = spawn(command[0]!, command.slice(1), {
        stdio: 'inherit',
        env: {
          ...process.env,
          PORT: String(first.port),
          LANEWAY_ROUTING_KEY: key,
          LANEWAY_BAGGAGE: `${DEFAULT_ROUTING_KEY_NAME}=${key}`,
          LANEWAY_EXPOSED: exposed.map((e) => `${e.target}=${e.local}`).join(','),
        },
      });
      child.once('error', (err) => {
        process.stderr.write(`laneway: ${command[0]}: ${err.message}\n`);
        stop(127);
      });
      child.once('exit', (code, signal) => stop(code ?? (signal === null ? 1 : 128)));
    }
  });
  process.exitCode = await done;
}

function report(state: LaneState): void {
  if (state.kind === 'disconnected') process.stderr.write(`lane disconnected (${state.reason}); reconnecting in ${state.retryInMs} ms\n`);
  else if (state.kind === 'connected') process.stderr.write('lane connected\n');
}
