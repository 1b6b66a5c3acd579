// `laneway demo` (`npm start`): starts the mini-mesh, forks orders as sandbox orders-pr-1, shows both paths and curl lines, runs until Ctrl-C.
import { ConfigError } from '../core/errors.js';
import { parseFlags, parsePositiveInt } from '../core/flags.js';
import { DEMO_FLAGS } from './flags.js';
import { BAGGAGE_KEY, formatPath, Mesh } from './mesh.js';
import { portIsFree, ProcessFailedError } from '../core/process.js';

const SANDBOX = 'orders-pr-1';
const FORKED = 'orders';
const FORK = 'orders-v2';

export async function runDemo(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, DEMO_FLAGS);
  const entryPort = values.port === undefined ? undefined : parsePositiveInt('--port', String(values.port), 65535);
  if (entryPort !== undefined && !(await portIsFree(entryPort))) {
    throw new ConfigError('--port', `127.0.0.1:${entryPort} is already in use; choose another port, or leave --port out to pick a free one`);
  }

  const out = (line = ''): boolean => process.stdout.write(`${line}\n`);
  const mesh = new Mesh({
    ...(entryPort !== undefined ? { entryPort } : {}),
    ...(values.verbose === true ? { sink: (label: string, text: string) => process.stderr.write(prefixLines(label, text)) } : {}),
  });

  // Handlers go in before anything starts, so Ctrl-C during startup also stops what is already up.
  let stopping = false;
  const shutdown = (reason: string): void => {
    if (stopping) {
      // A second Ctrl-C: stop waiting for graceful exits (the 'exit' hook SIGKILLs the children).
      process.exit(130);
    }
    stopping = true;
    out(`\n${reason}: stopping ${mesh.pids().length} processes…`);
    mesh.stop().then(
      () => {
        out('stopped.');
        process.exit(0);
      },
      (err: Error) => {
        process.stderr.write(`laneway demo: ${err.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGHUP', () => shutdown('SIGHUP'));
  // npm forwards only SIGINT and SIGTERM to a script (its start script `exec`s us, so no `sh -c` sits
  // between and swallows them); a SIGHUP or SIGKILL to npm ends npm alone. A new parent means whoever
  // started us is gone, so stop too.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent && !stopping) shutdown('parent process exited');
  }, 500).unref();

  out(`laneway demo: starting a local mini-mesh on 127.0.0.1 (${mesh.chain.join(', ')}, their sidecars, a control plane)…`);
  try {
    await mesh.start();
    const fork = await mesh.startFork(FORKED, FORK);
    const sandbox = await mesh.applySandbox(SANDBOX, [fork]);
    const plain = await mesh.call();
    const keyed = await mesh.call(sandbox.key);
    if (stopping) return;
    for (const [what, res] of [['without a key', plain], ['with the key', keyed]] as const) {
      if (res.status !== 200) throw new Error(`the request ${what} failed (${res.status}): ${JSON.stringify(res.body)}`);
    }

    const entry = mesh.service(mesh.chain[0]!);
    const forked = mesh.service(FORKED);
    const header = `baggage: ${BAGGAGE_KEY}=${sandbox.key}`;
    out();
    out('Laneway demo: every box below is a separate process on 127.0.0.1');
    out();
    out(`  ${'control plane'.padEnd(16)}${mesh.controlPlaneUrl}   (data in ${mesh.dataDir})`);
    out(`  ${'web console'.padEnd(16)}${mesh.controlPlaneUrl}/ui/   (sandboxes, workloads and their sidecars, lane paths, traffic, runs)`);
    for (const s of mesh.services) out(`  ${s.name.padEnd(16)}sidecar :${s.sidecarPort} → app :${s.appPort}`);
    out(`  ${fork.name.padEnd(16)}app :${fork.port}   fork of ${FORKED}, sandbox ${SANDBOX} (routing key ${sandbox.key})`);
    out();
    out(`Two requests to ${entry.name}'s sidecar; every hop adds who served it:`);
    out();
    const left = ['no routing key', formatPath(plain.body.path)];
    const right = [header, formatPath(keyed.body.path)];
    const width = Math.max(...left.map((s) => s.length)) + 6;
    out(`  ${left[0]!.padEnd(width)}${right[0]}`);
    out(`  ${left[1]!.padEnd(width)}${right[1]}`);
    out();
    out('Try it:');
    const tries: [string, string][] = [
      [`curl -s ${entry.url}/`, 'the baseline path'],
      [`curl -s -H '${header}' ${entry.url}/`, `the sandbox path`],
      [`curl -s ${mesh.controlPlaneUrl}/v1/sandboxes/${SANDBOX}`, 'the sandbox as the API stores it'],
      [`curl -s ${forked.admin}/routes`, `the ${FORKED} sidecar's route table`],
      [`curl -s -X DELETE ${mesh.controlPlaneUrl}/v1/sandboxes/${SANDBOX}`, 'then the key goes to the baseline'],
    ];
    const cmdWidth = Math.max(...tries.map(([cmd]) => cmd.length)) + 2;
    for (const [cmd, why] of tries) out(`  ${cmd.padEnd(cmdWidth)}# ${why}`);
    out();
    out(`Run your change locally: with your version of ${FORKED} listening on 127.0.0.1:3000,`);
    out(`  npx laneway connect --server ${mesh.controlPlaneUrl} --sandbox my-lane --workload ${forked.workload} --port ${forked.appPort}=127.0.0.1:3000`);
    out(`  prints a routing key; requests carrying it reach your process, the rest the baseline (README "Run your change locally").`);
    out();
    out('Running. Press Ctrl-C to stop every process.');
  } catch (err) {
    if (stopping) return; // Ctrl-C during startup: shutdown() reports and exits.
    stopping = true;
    await mesh.stop();
    const detail = err instanceof ProcessFailedError && err.output.trim() !== '' ? `\n--- its output ---\n${err.output.trimEnd()}` : '';
    throw new Error(`${(err as Error).message}${detail}`);
  }
  // Keep the process alive until a signal arrives; the children's pipes keep the event loop busy anyway.
  await new Promise<never>(() => setInterval(() => {}, 1 << 30));
}

function prefixLines(label: string, text: string): string {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => `[${label}] ${line}\n`)
    .join('');
}
