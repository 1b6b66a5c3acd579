// Child processes for the servers under test: spawn, wait until ready, read their CPU time and RSS from /proc, stop.
import type { ChildProcess } from 'node:child_process';
import { ManagedProcess, ProcessFailedError, startProcess } from '../../core/process.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The compiled `laneway` CLI (bench/ compiles to dist/bench/, so dist/cli is two levels up from dist/bench/lib). */
export const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
/** Compiled bench servers (dist/bench/servers/*.js). */
export const SERVERS = fileURLToPath(new URL('../servers/', import.meta.url));

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  /** stdout + stderr so far, for error messages */
  output(): string;
  /** true once it exited (a server under test that exits mid-run is an error) */
  exited(): boolean;
  stop(): Promise<void>;
}

/**
 * Spawns `command args` and resolves once `ready(output)` returns a value (e.g. a port parsed from
 * "listening on …"), or once a probe succeeds when the server is silent at its log level.
 */
export async function startChild<T>(
  name: string,
  command: string,
  args: readonly string[],
  ready: (output: string) => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
): Promise<{ child: Child; value: T }> {
  let started: { proc: ManagedProcess; ready: T };
  try {
    started = await startProcess(name, command, args, ready, { timeoutMs });
  } catch (err) {
    if (err instanceof ProcessFailedError) throw new Error(`${err.message}:\n${err.output.slice(-2000)}`);
    throw err;
  }
  const { proc } = started;
  const child: Child = {
    name,
    process: proc.process,
    pid: proc.pid as number,
    output: () => proc.output(),
    exited: () => !proc.alive,
    async stop() {
      await proc.stop('SIGTERM', 3000);
    },
  };
  return { child, value: started.ready };
}

export { sleep } from '../../core/process.js';

/** A port that was free a moment ago, for servers that cannot print the port they got: the demo mesh's helper, shared. */
export { freePort } from '../../core/process.js';

/** "listening on http://127.0.0.1:PORT" or "listening PORT" in a child's output → the port. */
export function listeningPort(output: string): number | undefined {
  const m = /listening (?:on )?(?:http:\/\/[^:\s]+:)?(\d+)/.exec(output);
  return m ? Number(m[1]) : undefined;
}

/** Resolves once `url` answers 200 (a readiness endpoint). */
export async function httpReady(url: string): Promise<boolean | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200 ? true : undefined;
  } catch {
    return undefined;
  }
}

// USER_HZ: the unit of utime/stime in /proc/<pid>/stat. 100 on every Linux build we run on (getconf CLK_TCK).
const CLOCK_TICKS = 100;

/** CPU seconds (user + system) a process has used so far; Linux /proc (proc(5)), fields 14 and 15. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) may contain spaces; fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Current and peak resident set size in bytes (/proc/<pid>/status VmRSS, VmHWM). */
export function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}
