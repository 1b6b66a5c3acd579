// `npm run bench` / `npm run bench:quick`: runs every suite, prints the tables and (full runs) writes bench/results/.
// usage: node dist/bench/run.js [--quick] [--suites micro,throughput,latency,cost,push,grpc,tunnel,capture,translate,scale] [--out <dir>] [--no-nginx]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startLab, type Lab } from './lib/contenders.js';
import type { BaseContext, SuiteContext, SuiteResult } from './lib/suite.js';
import { checkTargets, renderMarkdown, renderReadmeSection, renderSvg, targetsTable, type Environment } from './report.js';
import { cost } from './suites/cost.js';
import { latency } from './suites/latency.js';
import { micro } from './suites/micro.js';
import { push } from './suites/push.js';
import { grpcSuite } from './suites/grpc.js';
import { tunnelSuite } from './suites/tunnel.js';
import { captureSuite } from './suites/capture.js';
import { throughput } from './suites/throughput.js';
import { translateSuite } from './suites/translate.js';
import { scale } from './suites/scale.js';

const ALL_SUITES = ['micro', 'throughput', 'latency', 'cost', 'push', 'grpc', 'tunnel', 'capture', 'translate', 'scale'] as const;
type SuiteName = (typeof ALL_SUITES)[number];
const LAB_SUITES: Record<string, (ctx: SuiteContext) => Promise<SuiteResult>> = { throughput, latency, cost };

/** Where full runs are recorded (committed): the source tree's bench/results/, not dist/. */
const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));
/** The README's Performance section, regenerated with each recorded run (merged into README.md by its owner). */
const README_SECTION = fileURLToPath(new URL('../../bench/README.section.md', import.meta.url));

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]+)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? `Linux ${release()}`;
  } catch {
    return `Linux ${release()}`;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      suites: { type: 'string' },
      out: { type: 'string' },
      'no-nginx': { type: 'boolean', default: false },
    },
  });
  const quick = values.quick === true;
  const wanted = new Set<SuiteName>(values.suites === undefined ? ALL_SUITES : (values.suites.split(',') as SuiteName[]));
  for (const s of wanted) if (!ALL_SUITES.includes(s)) throw new Error(`unknown suite '${s}'; known: ${ALL_SUITES.join(', ')}`);
  const started = Date.now();
  // Other work on this shared machine shows in the load average: recorded so a reader can judge a run.
  const loadBefore = loadavg()[0] as number;

  // Failures are deduplicated: a broken contender in an open loop would otherwise report 1,000 times.
  const failures = new Map<string, number>();
  // A live line only on a terminal: a CI log or a pipe gets the plain log lines and no control characters.
  const live = process.stderr.isTTY === true;
  let suite = '';
  const base: BaseContext = {
    quick,
    fail: (message) => failures.set(message, (failures.get(message) ?? 0) + 1),
    log: (message) => process.stderr.write(`${live ? '\r\x1b[2K' : ''}[${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`),
    progress: live ? (line) => void process.stderr.write(`\r\x1b[2K[${((Date.now() - started) / 1000).toFixed(1)}s] suite ${suite}: ${line}`.slice(0, (process.stderr.columns || 80) + 4)) : () => undefined,
  };

  const results: SuiteResult[] = [];
  const run = async (name: string, fn: () => Promise<SuiteResult>): Promise<void> => {
    suite = name;
    base.log(`suite ${name}…`);
    try {
      const result = await fn();
      results.push(result);
      if (result.skipped !== undefined) base.log(`suite ${name} skipped: ${result.skipped}`);
    } catch (err) {
      base.fail(`${name}: ${(err as Error).stack ?? String(err)}`);
      results.push({ name, skipped: `failed: ${(err as Error).message}`, markdown: '' });
    }
  };

  // Micro first: it runs in this process, and nothing else should be busy while it does.
  if (wanted.has('micro')) await run('micro', () => micro(base));

  let lab: Lab | undefined;
  const labSuites = ALL_SUITES.filter((s) => wanted.has(s) && s in LAB_SUITES);
  const skipped: { name: string; reason: string }[] = [];
  if (labSuites.length > 0) {
    lab = await startLab({ nginx: values['no-nginx'] !== true });
    skipped.push(...lab.skipped);
    for (const s of lab.skipped) {
      if (s.failed === true) base.fail(`contender ${s.name}: ${s.reason}`);
      else base.log(`contender ${s.name} skipped: ${s.reason}`);
    }
    const ctx: SuiteContext = { ...base, lab };
    try {
      for (const name of labSuites) {
        await run(name, () => LAB_SUITES[name]!(ctx));
        // A server under test that died mid-suite is a broken contender, whatever the figures say.
        for (const dead of lab.deadServers()) base.fail(`${name}: ${dead}`);
      }
    } finally {
      await lab.close();
    }
  }
  if (wanted.has('push')) await run('push', () => push(base));
  if (wanted.has('grpc')) await run('grpc', () => grpcSuite(base));
  if (wanted.has('tunnel')) await run('tunnel', () => tunnelSuite(base));
  if (wanted.has('capture')) await run('capture', () => captureSuite(base));
  if (wanted.has('translate')) await run('translate', () => translateSuite(base));
  if (wanted.has('scale')) await run('scale', () => scale(base));

  const env: Environment = {
    date: new Date().toISOString().slice(0, 10),
    node: process.versions.node,
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    os: osName(),
    upstream: 'a minimal node:http server per upstream (bench/servers/upstream.ts, own process; answers its name, 7–8 bytes, with content-length)',
    quick,
    skipped,
    load: { before: loadBefore, after: loadavg()[0] as number },
  };
  const checks = checkTargets(results);
  for (const r of results) {
    process.stdout.write(`\n## ${r.name}\n\n${r.skipped !== undefined ? `skipped: ${r.skipped}` : r.markdown}\n`);
  }
  process.stdout.write(`\n## targets (issue 4; reported, never enforced)\n\n${targetsTable(checks)}\n`);

  // Only a full run of every suite is recorded in bench/results/ (the committed figures); others print, or go to --out.
  const outDir = values.out ?? (quick || values.suites !== undefined ? undefined : RESULTS_DIR);
  if (outDir !== undefined) {
    mkdirSync(outDir, { recursive: true });
    const svg = renderSvg(env, results);
    if (svg !== undefined) writeFileSync(join(outDir, 'latest.svg'), svg);
    writeFileSync(join(outDir, 'latest.md'), renderMarkdown(env, results, checks, svg !== undefined ? 'latest.svg' : undefined));
    const json = { environment: env, targets: checks, failures: [...failures.keys()], suites: Object.fromEntries(results.map((r) => [r.name, r.skipped !== undefined ? { skipped: r.skipped } : r.data])) };
    const jsonName = `${env.date}${quick ? '-quick' : ''}.json`;
    writeFileSync(join(outDir, jsonName), `${JSON.stringify(json, null, 2)}\n`);
    if (outDir === RESULTS_DIR) writeFileSync(README_SECTION, renderReadmeSection(env, results, checks, `bench/results/${jsonName}`));
    base.log(`results written to ${outDir}`);
  }

  base.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (failures.size > 0) {
    process.stderr.write(`\nFAILED: ${failures.size} problem(s) — a contender errored or the sidecar answered wrongly:\n`);
    for (const [message, n] of [...failures].slice(0, 20)) process.stderr.write(`  - ${message}${n > 1 ? ` (×${n})` : ''}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
