// `laneway demo` as a user runs it: a child process whose printed paths and curl lines are checked, and whose SIGTERM leaves no process behind.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createServer } from 'node:net';
import { expect, it } from 'vitest';
import { request } from 'undici';
import { DIST } from '../../demo/mesh.js';
import { waitFor } from '../../core/poll.js';
import { runLaneway, startLaneway } from '../helpers/processes.js';

/** Every live descendant of `root` (Linux /proc): the processes the demo started, and theirs. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const pid of children.get(queue.shift()!) ?? []) {
      found.push(pid);
      queue.push(pid);
    }
  }
  return found;
}

/** State and parent of a process; undefined once it is gone. The command name may hold spaces and parentheses. */
function readStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

const isRunning = (pid: number): boolean => {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== 'Z';
};

it('prints the baseline and the sandbox path side by side and working curl lines; SIGTERM stops every process', async () => {
  const demo = await startLaneway(['demo'], /Press Ctrl-C/, {}, 45_000);
  const out = demo.output();

  // Both paths, side by side on one line, under the header naming the baggage to send.
  expect(out).toMatch(/^ {2}no routing key +baggage: laneway=[a-z0-9]+$/m);
  expect(out).toMatch(/^ {2}web → orders → payments +web → orders-v2 → payments$/m);
  const key = /baggage: laneway=([a-z0-9]+)/.exec(out)![1]!;

  // The first two curl lines are what a newcomer pastes: run them (with undici) and check the paths.
  const curls = out.split('\n').filter((line) => line.trimStart().startsWith('curl '));
  expect(curls.length).toBeGreaterThanOrEqual(4);
  const plainUrl = /curl -s (http:\S+)/.exec(curls[0]!)![1]!;
  const keyed = /curl -s -H '([^:]+): ([^']+)' (http:\S+)/.exec(curls[1]!)!;
  expect(keyed[2]).toBe(`laneway=${key}`);
  const plain = (await (await request(plainUrl)).body.json()) as { path: string[] };
  expect(plain.path).toEqual(['web', 'orders', 'payments']);
  const forked = (await (await request(keyed[3]!, { headers: { [keyed[1]!]: keyed[2]! } })).body.json()) as { path: string[] };
  expect(forked.path).toEqual(['web', 'orders-v2', 'payments']);

  // The web console's URL, served by the demo's control plane.
  const consoleUrl = /^ {2}web console +(http:\/\/127\.0\.0\.1:\d+\/ui\/)/m.exec(out)?.[1];
  expect(consoleUrl).toBeDefined();
  const page = await request(consoleUrl!);
  expect(page.statusCode).toBe(200);
  expect(page.headers['content-security-policy']).toContain("script-src 'self'");
  expect(await page.body.text()).toContain('<title>Laneway console</title>');

  // control plane + 3 services + 3 sidecars + the fork, each a separate process
  const pids = descendants(demo.child.pid!);
  expect(pids).toHaveLength(8);
  const dataDir = /\(data in ([^)]+)\)/.exec(out)![1]!;
  expect(existsSync(dataDir)).toBe(true);

  expect(await demo.stop('SIGTERM')).toBe(0);
  await waitFor('every child of the demo to exit', () => pids.every((pid) => !isRunning(pid)), 5000);
  expect(demo.output()).toMatch(/stopping 8 processes/);
  expect(existsSync(dataDir)).toBe(false);
});

it('a --port already in use gets one clear line and exit 2', async () => {
  const holder = createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const { port } = holder.address() as { port: number };
  try {
    const { code, stderr } = await runLaneway(['demo', '--port', String(port)]);
    expect(code).toBe(2);
    expect(stderr.trim()).toBe(`laneway: --port: 127.0.0.1:${port} is already in use; choose another port, or leave --port out to pick a free one`);
  } finally {
    holder.close();
  }
});

it('a process the mesh started stops itself when its parent is SIGKILLed (parent-guard)', async () => {
  // The middle process plays the demo: it starts a service the way the mesh does, then is killed
  // without a chance to clean up. The service must notice and exit on its own.
  const guard = pathToFileURL(join(DIST, 'demo', 'parent-guard.js')).href;
  const script = `require('node:child_process').spawn(process.execPath, ['--import', ${JSON.stringify(guard)}, ${JSON.stringify(join(DIST, 'demo', 'service.js'))}, '--name', 'orphan'], { stdio: 'inherit' }); setInterval(() => {}, 1e9);`;
  const middle = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  middle.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('the service to listen', () => out.includes('service listening'));
  const [service] = descendants(middle.pid!);
  expect(service).toBeDefined();

  middle.kill('SIGKILL');
  await waitFor('the orphaned service to exit', () => !isRunning(service!), 5000);
});
