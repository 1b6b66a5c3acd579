// Test helpers: start real `laneway` child processes from dist/ and wait until they say they are up.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface Started {
  readonly child: ChildProcess;
  /** everything the process wrote so far (stdout + stderr) */
  output(): string;
  /** SIGTERM and wait for exit; returns the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A port that was free a moment ago: the demo mesh's helper, shared. */
export { freePort } from '../../demo/mesh.js';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Collects a child's stdout + stderr and resolves once it matches `ready`, with a reader of all output
 * so far; rejects when the child exits first or `timeoutMs` passes (the message carries the output).
 */
export function waitForOutput(child: ChildProcess, ready: RegExp, label: string, timeoutMs: number): Promise<() => string> {
  let out = '';
  const onData = (d: Buffer): void => {
    out += d.toString();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${ready} from ${label}:\n${out}`)), timeoutMs);
    const check = (): void => {
      if (!ready.test(out)) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.stderr!.off('data', check);
      resolve(() => out);
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited with ${code} before ready:\n${out}`));
    });
  });
}

/** Runs `laneway <args>` and resolves once a line of its output matches `ready`. */
export async function startLaneway(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<Started> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const exited = once(child, 'exit');
  void exited.then(() => running.delete(child));
  const output = await waitForOutput(child, ready, `laneway ${args.join(' ')}`, timeoutMs);
  return {
    child,
    output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await exited;
      return code as number | null;
    },
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
