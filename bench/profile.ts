// Profiles the sidecar under load: runs it with --cpu-prof behind autocannon, then lists the top self-time functions and files.
// usage: node dist/bench/profile.js [--seconds 10] [--rate <req/s>] [--baseline] [--keep <dir>]
//   --rate: a fixed-rate open loop (e.g. 1000, the cost suite's load) instead of autocannon at 32 connections
//   --baseline: requests without baggage (routed to the baseline app)
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startSidecar, startUpstream } from './lib/contenders.js';
import { BASE_HEADERS, routeSnapshot, SANDBOX_HEADERS } from './lib/fixtures.js';
import { openLoop } from './lib/load.js';
import { nsHistogram, table } from './lib/stats.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function and per file from a V8 .cpuprofile (sample counts weighted by their time deltas). */
export function summarize(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  let total = 0;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    total += us;
    const file = url === '' ? '(native / V8)' : url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/dist\//, 'dist/');
    const fn = `${functionName || '(anonymous)'} ${file}${url ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    const area = file.startsWith('node_modules/') ? file.split('/').slice(0, 2).join('/') : file;
    byFile.set(area, (byFile.get(area) ?? 0) + us);
  }
  const rows = (m: Map<string, number>): string[][] =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) => [name, `${((100 * us) / total).toFixed(1)} %`]);
  return [`### Self time by function (top ${top})`, '', table(['function', 'self'], rows(byFunction)), '', '### Self time by file / package', '', table(['file', 'self'], rows(byFile))].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, rate: { type: 'string' }, baseline: { type: 'boolean', default: false }, keep: { type: 'string' } } });
  const seconds = Number(values.seconds);
  const dir = values.keep ?? mkdtempSync(join(tmpdir(), 'laneway-profile-'));
  const baseline = await startUpstream('baseline');
  const sandbox = await startUpstream('sandbox');
  const routesFile = join(dir, 'routes.json');
  writeFileSync(routesFile, JSON.stringify(routeSnapshot(`127.0.0.1:${sandbox.port}`, baseline.port)));
  const sidecar = await startSidecar(baseline.port, routesFile, ['--cpu-prof', '--cpu-prof-dir', dir]);
  try {
    const headers = values.baseline ? BASE_HEADERS : SANDBOX_HEADERS;
    const expectBody = values.baseline ? 'baseline' : 'sandbox';
    if (values.rate !== undefined) {
      const pool = new Pool(`http://127.0.0.1:${sidecar.port}`, { connections: 16 });
      let bad = 0;
      const ctx = { quick: false, fail: () => void bad++, log: () => {}, progress: () => {} };
      await openLoop(ctx, pool, { name: 'laneway', headers, expectBody }, Number(values.rate), seconds, nsHistogram());
      await pool.close();
      process.stderr.write(`${values.rate} req/s open loop, ${bad} bad\n`);
    } else {
      const result = await autocannon({ url: `http://127.0.0.1:${sidecar.port}/`, connections: 32, duration: seconds, headers: { ...headers }, expectBody });
      process.stderr.write(`${Math.round(result.requests.total / seconds)} req/s, ${result.errors + result.non2xx + result.mismatches} bad\n`);
    }
  } finally {
    await sidecar.child.stop(); // SIGTERM → the sidecar drains and exits 0, and V8 writes the profile
    await baseline.child.stop();
    await sandbox.child.stop();
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile written in ${dir}`);
  process.stdout.write(`${summarize(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile)}\n`);
  if (values.keep === undefined) rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`profile kept: ${join(dir, file)} (open in Chrome DevTools › Performance)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`profile: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
