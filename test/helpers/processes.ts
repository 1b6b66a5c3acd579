// Test helpers: start real `laneway` child processes from dist/ and wait until they say they are up.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { ManagedProcess, ProcessFailedError, startProcess } from '../../core/process.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface Started {
  readonly child: ChildProcess;
  /** everything the process wrote so far (stdout + stderr) */
  output(): string;
  /** SIGTERM and wait for exit; returns the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export { freePort } from '../../core/process.js';

/** A failed start, with what the child printed in the message (vitest shows only the message). */
function withOutput(err: unknown): unknown {
  return err instanceof ProcessFailedError ? new Error(`${err.message}:\n${err.output}`) : err;
}

/**
 * Adopts a spawned child (stdout and stderr piped) and resolves once its output matches `ready`, with
 * a reader of all output so far; rejects when the child exits first or `timeoutMs` passes.
 */
export async function waitForOutput(child: ChildProcess, ready: RegExp, label: string, timeoutMs: number): Promise<() => string> {
  const proc = new ManagedProcess(label, child);
  try {
    await proc.waitReady(ready, timeoutMs);
  } catch (err) {
    throw withOutput(err);
  }
  return () => proc.output();
}

/** Runs `laneway <args>` and resolves once a line of its output matches `ready`. */
export async function startLaneway(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<Started> {
  let proc: ManagedProcess;
  try {
    ({ proc } = await startProcess(`laneway ${args.join(' ')}`, process.execPath, [CLI, ...args], ready, { env: { ...process.env, ...env }, timeoutMs }));
  } catch (err) {
    throw withOutput(err);
  }
  return {
    child: proc.process,
    output: () => proc.output(),
    // Tests observe how a process stops (drain, exit code): no SIGKILL escalation within a test's time.
    stop: (signal: NodeJS.Signals = 'SIGTERM') => proc.stop(signal, 60_000),
  };
}

/** Runs `laneway <args>` to completion; returns exit code and output. */
export async function runLaneway(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = await once(child, 'exit');
  return { code: code as number | null, stdout, stderr };
}

export interface SidecarProcess extends Started {
  readonly port: number;
  readonly admin: string;
}

/** Starts a sidecar in front of `appPort` with the given route source flags, on ports it picks itself. */
export async function startSidecar(opts: { appPort: number; workload?: string; extra?: string[]; env?: NodeJS.ProcessEnv }): Promise<SidecarProcess> {
  const started = await startLaneway(
    [
      'sidecar',
      '--workload', opts.workload ?? 'default/orders',
      '--port', `0:${opts.appPort}`,
      '--admin', '127.0.0.1:0',
      '--log-level', 'info',
      ...(opts.extra ?? []),
    ],
    /"msg":"sidecar listening"/,
    opts.env,
  );
  // Port 0 avoids racing other tests for a "free" port; the real ports are in the listening line.
  const line = /[^\n]*"msg":"sidecar listening"[^\n]*/.exec(started.output())![0];
  const { ports, admin } = JSON.parse(line) as { ports: string[]; admin: string };
  const port = Number(/:(\d+)->/.exec(ports[0]!)![1]);
  return { ...started, port, admin: `http://${admin}` };
}
