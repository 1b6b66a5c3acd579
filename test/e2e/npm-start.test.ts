// `npm start` as an IDE's stop button or a supervisor stops it: one signal to the npm process alone must stop the whole demo and remove its data dir.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { waitFor } from '../../core/poll.js';
import { waitForOutput } from '../helpers/processes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Parent of every live process (Linux /proc); zombies count as gone. */
function processTable(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: the fields after it start past the last ')'.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z') parents.set(Number(entry), Number(ppid));
    } catch {
      // exited while we were reading
    }
  }
  return parents;
}

function descendants(root: number): number[] {
  const table = processTable();
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [pid, ppid] of table) {
      if (ppid !== parent) continue;
      found.push(pid);
      queue.push(pid);
    }
  }
  return found;
}

/** Live processes whose command line mentions `text` (the control plane's --data names the demo's temp dir). */
function mentioning(text: string): number[] {
  const found: number[] = [];
  for (const pid of processTable().keys()) {
    if (pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)) found.push(pid);
    } catch {
      // exited while we were reading
    }
  }
  return found;
}

// What a failing run would otherwise leave behind: the demo's processes and its data dir.
const leftovers: { pids: number[]; dataDir?: string }[] = [];
afterEach(() => {
  for (const { pids, dataDir } of leftovers.splice(0)) {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  }
});

it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('npm start, then %s to the npm process only: npm exits, no demo process remains, the data dir is gone', async (signal) => {
  // detached: npm leads its own process group, so nothing but the signal we send reaches it (no terminal, no group).
  const npm = spawn('npm', ['start'], { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const exited = once(npm, 'exit');
  const tracked = { pids: [npm.pid!] as number[], dataDir: undefined as string | undefined };
  leftovers.push(tracked);
  const output = await waitForOutput(npm, /^Running\./m, 'npm start', 30_000);
  const dataDir = /\(data in ([^)]+)\)/.exec(output())![1]!;
  tracked.dataDir = dataDir;
  const pids = descendants(npm.pid!);
  tracked.pids.push(...pids);
  // the demo, its control plane, 3 services, 3 sidecars and the fork (and a `sh -c` if the script did not exec)
  expect(pids.length).toBeGreaterThanOrEqual(9);
  expect(mentioning(dataDir).length).toBeGreaterThan(0);
  expect(existsSync(dataDir)).toBe(true);

  npm.kill(signal);
  const bounded = new Promise((_, reject) => setTimeout(() => reject(new Error(`npm still running 8 s after ${signal}:\n${output()}`)), 8000).unref());
  await Promise.race([exited, bounded]);
  const alive = (): number[] => [...new Set([...pids.filter((pid) => processTable().has(pid)), ...mentioning(dataDir)])];
  await waitFor(`every demo process to exit after ${signal}`, () => alive().length === 0, 6000).catch(() => {
    throw new Error(`after ${signal}, ${alive().length} of ${pids.length} demo processes still run: ${alive().join(' ')}`);
  });
  expect(existsSync(dataDir)).toBe(false);
});
