// Output formats (-o table|json|yaml|name, --no-headers), the config file, exit codes and `plan run`'s terminal progress, against a real control plane and sidecar.
import { chmodSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CLI, runLaneway } from '../helpers/processes.js';
import { call, removeTempDirs, startControlPlane, tempDir, type ControlPlaneProcess } from '../control-plane/helpers.js';
import { catalogPlan, startLane, workdir, type Lane } from '../validate/fixture.js';

let cp: ControlPlaneProcess;
let lane: Lane;
let wd: ReturnType<typeof workdir>;
let runId: string;
let home: string;

// HOME and XDG_CONFIG_HOME point at an empty directory: the developer's own config file never leaks into a test.
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runLaneway(args, { LANEWAY_URL: cp.url, LANEWAY_TOKEN: '', HOME: home, XDG_CONFIG_HOME: '', LANEWAY_OUTPUT: '', ...env });

beforeAll(async () => {
  wd = workdir();
  home = tempDir('laneway-home-');
  cp = await startControlPlane(tempDir(), ['--policy', wd.file('policy.yaml', 'hosts: ["127.0.0.0/8"]\nmethods: [GET]\nload: {maxRequests: 1000, maxRate: 500, maxDuration: 60s}\nmaxTimeout: 30s\n'), '--probe-interval', '200ms']);
  lane = await startLane(cp.url);
  const plan = parseYaml(catalogPlan(lane.url)) as { name: string };
  expect((await call(cp.url, 'PUT', `/v1/plans/${plan.name}`, { plan, tags: ['stable'] })).status).toBe(201);
  const run = await call(cp.url, 'POST', `/v1/plans/${plan.name}/runs`, { sandbox: 'pr-same', wait: true });
  expect(run.status, JSON.stringify(run.body)).toBe(200);
  runId = run.body.id;
}, 90_000);

afterAll(async () => {
  await lane?.stop();
  await cp?.stop();
  wd?.remove();
  removeTempDirs();
});

describe('-o on every command that prints resources', () => {
  /** [args, the API path whose JSON -o json must equal (after dropping fields that move), the names -o name prints] */
  const matrix = (): [string[], string, string[]][] => [
    [['sandbox', 'list'], '/v1/sandboxes', ['sandbox/pr-rename', 'sandbox/pr-same', 'sandbox/pr-slow']],
    [['sandbox', 'get', 'pr-same'], '/v1/sandboxes/pr-same', ['sandbox/pr-same']],
    [['routes', 'default/catalog'], '/v1/workloads/default/catalog/routes', ['route/pr-rename:' + lane.baseline.port, 'route/pr-same:' + lane.baseline.port, 'route/pr-slow:' + lane.baseline.port]],
    [['plan', 'list'], '/v1/plans', ['plan/catalog-check']],
    [['run', 'list'], '/v1/runs', [`run/${runId}`]],
  ];

  it('json is the API response, yaml the same document, name one kind/name per line', async () => {
    for (const [args, path, names] of matrix()) {
      const [json, yaml, name, api] = await Promise.all([cli([...args, '-o', 'json']), cli([...args, '-o', 'yaml']), cli([...args, '-o', 'name']), call(cp.url, 'GET', path)]);
      for (const out of [json, yaml, name]) expect(out.code, `${args.join(' ')}: ${out.stderr}`).toBe(0);
      // expiresAt-style countdowns and probe times move between calls: compare the stable shape
      const stable = (doc: unknown): string => JSON.stringify(doc, (k, v) => (['lastProbeAt', 'probedAt', 'checkedAt', 'updatedAt'].includes(k) ? undefined : v));
      expect(stable(JSON.parse(json.stdout)), args.join(' ')).toBe(stable(api.body));
      expect(stable(parseYaml(yaml.stdout)), args.join(' ')).toBe(stable(JSON.parse(json.stdout)));
      expect(name.stdout.split('\n').filter(Boolean).sort(), args.join(' ')).toEqual(names.sort());
    }
  });

  it('table has a header line, --no-headers drops it and keeps the rows', async () => {
    for (const [args, , names] of matrix()) {
      if (args[1] === 'get') continue;
      const [table, bare] = await Promise.all([cli([...args, '-o', 'table']), cli([...args, '--no-headers'])]);
      expect(table.code, table.stderr).toBe(0);
      const rows = table.stdout.split('\n').filter(Boolean);
      const headerAt = rows.findIndex((r) => /^[A-Z][A-Z ]+(\s{2}[A-Z ]+)+$/.test(r));
      expect(headerAt, `${args.join(' ')}:\n${table.stdout}`).toBeGreaterThanOrEqual(0);
      // columns are as wide as their widest cell, the header's included: compare cells, not padding
      const cells = (lines: string[]): string[][] => lines.map((l) => l.split(/\s{2,}/));
      expect(cells(bare.stdout.split('\n').filter(Boolean))).toEqual(cells(rows.slice(headerAt + 1)));
      expect(rows.length - headerAt - 1).toBe(names.length);
    }
  });

  it('skills list, run get and traffic take -o json and yaml too', async () => {
    const [skills, skillsName, run, runYaml, traffic] = await Promise.all([
      cli(['skills', 'list', '-o', 'json']),
      cli(['skills', 'list', '-o', 'name']),
      cli(['run', 'get', runId, '-o', 'json']),
      cli(['run', 'get', runId, '-o', 'yaml']),
      cli(['traffic', 'pr-same', '-o', 'yaml']),
    ]);
    expect(JSON.parse(skills.stdout).items.map((s: { name: string }) => s.name)).toEqual(['catalog-check']);
    expect(skillsName.stdout).toBe('skill/catalog-check@1.0.0\n');
    expect(JSON.parse(run.stdout).id).toBe(runId);
    expect(parseYaml(runYaml.stdout)).toEqual(JSON.parse(run.stdout));
    expect(traffic.code, traffic.stderr).toBe(0);
  });

  it('--server before the command is the global flag; after it, the command flag wins', async () => {
    const [before, after, missing] = await Promise.all([
      cli(['--server', cp.url, 'sandbox', 'list', '-o', 'name'], { LANEWAY_URL: '' }),
      cli(['--server=http://127.0.0.1:1', 'sandbox', 'list', '--server', cp.url, '-o', 'name']),
      cli(['--server']),
    ]);
    expect(before.stdout).toContain('sandbox/pr-same\n');
    expect(after.code, after.stderr).toBe(0);
    expect(missing.code).toBe(2);
  });

  it('a format a command does not print exits 2 naming the flag and the choices', async () => {
    const out = await cli(['sandbox', 'list', '-o', 'wide']);
    expect(out.code).toBe(2);
    expect(out.stderr).toBe("laneway: --output: expected one of table, json, yaml, name, got 'wide'\n");
  });
});

describe('the config file', () => {
  function config(text: string): NodeJS.ProcessEnv {
    const file = wd.file(`config-${Math.random().toString(36).slice(2)}.yaml`, text);
    return { LANEWAY_CONFIG: file, LANEWAY_URL: '' };
  }

  it('sets the server and the default output; a flag and the environment win over it', async () => {
    const env = config(`server: ${cp.url}\noutput: name\n`);
    const [fromFile, flagWins, envWins, notAccepted] = await Promise.all([
      cli(['sandbox', 'list'], env),
      cli(['sandbox', 'list', '-o', 'json'], env),
      cli(['sandbox', 'list', '--no-headers'], { ...env, LANEWAY_URL: 'http://127.0.0.1:1' }),
      // doctor prints text or json: a default it does not take leaves its own
      cli(['plan', 'validate', wd.file('p.yaml', catalogPlan(lane.url))], env),
    ]);
    expect(fromFile.stdout).toContain('sandbox/pr-same\n');
    expect(JSON.parse(flagWins.stdout).items).toHaveLength(3);
    expect(envWins.code).toBe(3);
    expect(envWins.stderr).toContain('http://127.0.0.1:1');
    expect(notAccepted.code, notAccepted.stderr).toBe(0);
  });

  it('reads the token from tokenFile, refuses one others can read, and refuses a token in the file itself', async () => {
    const tokens = wd.file('tokens', 'writer:writer-token-0123456789\n');
    const secured = await startControlPlane(tempDir(), ['--tokens-file', tokens]);
    try {
      const tokenFile = wd.file('token', 'writer-token-0123456789\n');
      chmodSync(tokenFile, 0o600);
      const open = wd.file('open-token', 'writer-token-0123456789\n');
      chmodSync(open, 0o644);
      const [ok, none, leaky, inline, unknown] = await Promise.all([
        cli(['sandbox', 'list'], config(`server: ${secured.url}\ntokenFile: ${tokenFile}\n`)),
        cli(['sandbox', 'list'], config(`server: ${secured.url}\n`)),
        cli(['sandbox', 'list'], config(`server: ${secured.url}\ntokenFile: ${open}\n`)),
        cli(['sandbox', 'list'], config(`server: ${secured.url}\ntoken: abc\n`)),
        cli(['sandbox', 'list'], config('sever: http://x\n')),
      ]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toBe('no sandboxes\n');
      expect(none.code).toBe(3);
      expect(none.stderr).toContain('LANEWAY_ERR_UNAUTHENTICATED 401');
      expect(leaky.code).toBe(2);
      expect(leaky.stderr).toMatch(/tokenFile .*: readable by others \(mode 644\); chmod 600 it/);
      expect(inline.code).toBe(2);
      expect(inline.stderr).toContain('token: put the token in a file of its own');
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain(': sever: unknown key (expected server, tokenFile, output)');
    } finally {
      await secured.stop();
    }
  });

  it('is not read by the sidecar or the control plane', async () => {
    const out = await cli(['control-plane', '--listen', 'x'], config('not: [valid\n'));
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('--listen');
  });
});

describe('plan run progress', () => {
  let planFile: string;
  beforeAll(() => {
    planFile = wd.file(
      'load.yaml',
      `name: load-check\nversion: "1"\nsteps:\n  - id: ready\n    wait: {timeout: 20s}\n  # progress is under test, not latency: bounds no loaded machine can miss\n  - id: under-load\n    load: {url: "${lane.url}/items/1", requests: 60, rate: 40, connections: 2, bounds: {maxIncrease: "1000%", grace: 5s}}\n`,
    );
  });

  /** `laneway <args>` under a pseudo-terminal (util-linux `script`), so stdout and stderr are both TTYs. */
  async function underPty(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
    const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, LANEWAY_URL: cp.url, LANEWAY_TOKEN: '', HOME: home, COLUMNS: '120', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await once(child, 'exit');
    return out;
  }

  it('on a terminal: each step as it starts, a live line for load, the verdict coloured unless NO_COLOR', async () => {
    const [coloured, plain] = await Promise.all([underPty(['plan', 'run', planFile, '--sandbox', 'pr-same']), underPty(['plan', 'run', planFile, '--sandbox', 'pr-same'], { NO_COLOR: '1' })]);
    expect(coloured).toContain('...   ready: wait');
    expect(coloured).toContain('...   under-load: load');
    expect(coloured).toMatch(/under-load: (baseline|sandbox): \d+\/60 answered, \d+ errors, [0-9.]+s/);
    expect(coloured).toContain('\x1b[32mPASS \x1b[0m under-load');
    expect(plain).toContain('PASS  under-load');
    expect(plain).not.toContain('\x1b[32m');
  });

  it('piped, or with -o json: no progress and no control characters', async () => {
    const [piped, json] = await Promise.all([cli(['plan', 'run', planFile, '--sandbox', 'pr-same']), underPty(['plan', 'run', planFile, '--sandbox', 'pr-same', '-o', 'json'])]);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout + piped.stderr).not.toContain('\x1b');
    expect(piped.stdout + piped.stderr).not.toContain('answered');
    expect(json).not.toContain('answered');
    expect(json).not.toContain('\x1b[');
  });
});
