// The one process harness: spawn a child, collect its output, wait until it says (or shows) it is ready, stop it,
// and never leave one behind when we exit. Used by the demo mesh, the tests and the bench.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Startup on a busy 2-core machine: a cold Node process loading Fastify and SQLite can take seconds. */
export const READY_TIMEOUT_MS = 20_000;
/** SIGTERM first; SIGKILL after this if the child has not exited. */
export const STOP_TIMEOUT_MS = 5_000;
/** Output kept per child (the tail): enough for every line a test inspects, bounded for chatty servers. */
export const OUTPUT_TAIL_BYTES = 1024 * 1024;
/** How often a readiness function (e.g. an HTTP probe) is retried while the child prints nothing. */
const READY_POLL_MS = 25;

/** Every child started here, so that an exiting parent never leaves one behind. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers run synchronously: kill() is all that can still happen there.
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** A child that exited or timed out before it was ready; `output` is what it printed, which usually says why. */
export class ProcessFailedError extends Error {
  readonly output: string;
  constructor(message: string, output: string) {
    super(message);
    this.name = 'ProcessFailedError';
    this.output = output;
  }
}

/** Readiness: a pattern in the output (resolves with its match) or a function returning a value once ready. */
export type Ready<T> = RegExp | ((output: string) => T | undefined | Promise<T | undefined>);

export class ManagedProcess {
  readonly label: string;
  readonly process: ChildProcess;
  /** resolves with the exit code (null when killed by a signal) */
  readonly exited: Promise<number | null>;
  #tail = '';
  #wake: (() => void) | null = null;

  /** Adopts a spawned child whose stdout and stderr are pipes; `onOutput` sees every chunk. */
  constructor(label: string, child: ChildProcess, onOutput?: (text: string) => void) {
    this.label = label;
    this.process = child;
    track(child);
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString();
      this.#tail = this.#tail.length + text.length > OUTPUT_TAIL_BYTES ? (this.#tail + text).slice(-OUTPUT_TAIL_BYTES) : this.#tail + text;
      onOutput?.(text);
      this.#wake?.();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => this.#wake?.());
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get alive(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** stdout + stderr so far (the last OUTPUT_TAIL_BYTES) */
  output(): string {
    return this.#tail;
  }

  /**
   * Resolves once `ready` holds: for a RegExp with its match in the output, for a function with its
   * value. Rejects with ProcessFailedError when the child exits first or `timeoutMs` passes (the child
   * is then stopped).
   */
  waitReady(ready: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  waitReady<T>(ready: (output: string) => T | undefined | Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  async waitReady<T>(ready: Ready<T>, timeoutMs = READY_TIMEOUT_MS): Promise<RegExpExecArray | T> {
    const check = typeof ready === 'function' ? ready : (out: string): RegExpExecArray | undefined => ready.exec(out) ?? undefined;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check(this.#tail);
      if (value !== undefined) return value;
      if (!this.alive) throw new ProcessFailedError(`${this.label} exited (${this.process.signalCode ?? this.process.exitCode}) before it was ready`, this.#tail);
      const left = deadline - Date.now();
      if (left <= 0) {
        await this.stop('SIGKILL');
        throw new ProcessFailedError(`${this.label}: not ready after ${timeoutMs} ms`, this.#tail);
      }
      // Wake on the next output or exit; a function's probe is retried meanwhile.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, typeof ready === 'function' ? Math.min(READY_POLL_MS, left) : left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  /** `signal` (SIGTERM), then SIGKILL after `killAfterMs`; resolves with the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = STOP_TIMEOUT_MS): Promise<number | null> {
    if (this.alive) {
      this.process.kill(signal);
      const timer = setTimeout(() => this.process.kill('SIGKILL'), killAfterMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.process.exitCode;
  }
}

export interface StartOptions {
  /** the child's whole environment (default: ours) */
  readonly env?: NodeJS.ProcessEnv;
  readonly onOutput?: (text: string) => void;
  readonly timeoutMs?: number;
}

/** Spawns `command args`, waits until `ready`; on failure the child is stopped and ProcessFailedError says why. */
export function startProcess(label: string, command: string, args: readonly string[], ready: RegExp, options?: StartOptions): Promise<{ proc: ManagedProcess; ready: RegExpExecArray }>;
export function startProcess<T>(label: string, command: string, args: readonly string[], ready: (output: string) => T | undefined | Promise<T | undefined>, options?: StartOptions): Promise<{ proc: ManagedProcess; ready: T }>;
export async function startProcess<T>(label: string, command: string, args: readonly string[], ready: Ready<T>, options: StartOptions = {}): Promise<{ proc: ManagedProcess; ready: RegExpExecArray | T }> {
  const proc = new ManagedProcess(label, spawn(command, args, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] }), options.onOutput);
  try {
    return { proc, ready: await (proc.waitReady as (r: Ready<T>, t?: number) => Promise<RegExpExecArray | T>)(ready, options.timeoutMs) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** A port that was free a moment ago (listen on 0, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** True when nothing listens on 127.0.0.1:`port` and we may bind it. */
export async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    server.close();
    await once(server, 'close');
    return true;
  } catch {
    return false;
  }
}

export { sleep };
