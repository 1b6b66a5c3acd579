// `--help`, `laneway help`, `--version` and the completion scripts: golden files (UPDATE_GOLDEN=1 rewrites them) and the table's own rules.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandTable, type CommandInfo } from '../../cli/commands.js';
import { FLAGS as CONTROL_PLANE_FLAGS } from '../../control-plane/config.js';
import { SIDECAR_FLAGS } from '../../proxy/config.js';
import { CLI, runLaneway } from '../helpers/processes.js';
import { removeTempDirs, startControlPlane, tempDir, type ControlPlaneProcess } from '../control-plane/helpers.js';

const table = commandTable(SIDECAR_FLAGS, CONTROL_PLANE_FLAGS);
const everyCommand: CommandInfo[] = table.flatMap((c) => [c, ...(c.subcommands ?? [])]);
const GOLDEN = new URL('./golden/', import.meta.url);

/** Compares with the golden file, or writes it under UPDATE_GOLDEN=1. */
function golden(name: string, actual: string): void {
  const file = new URL(name, GOLDEN);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    mkdirSync(new URL('.', file), { recursive: true });
    writeFileSync(file, actual);
  }
  expect(actual, `${name} differs (UPDATE_GOLDEN=1 npm test rewrites it)`).toBe(readFileSync(file, 'utf8'));
}

describe('the command table', () => {
  it('documents every flag: a one-line doc, and a placeholder for every flag that takes a value', () => {
    for (const command of everyCommand) {
      for (const [name, spec] of Object.entries(command.flags)) {
        expect(spec.doc, `laneway ${command.path} --${name} has no doc`).toMatch(/^[^\n]{8,}$/);
        if (spec.type === 'string') expect(spec.arg, `laneway ${command.path} --${name} has no placeholder`).toBeDefined();
      }
      expect(command.example, `laneway ${command.path} has no example`).toMatch(/^laneway /);
    }
  });

  it("documents each sidecar and control-plane flag, and no flag that does not exist", () => {
    const sidecar = table.find((c) => c.path === 'sidecar')!;
    const controlPlane = table.find((c) => c.path === 'control-plane')!;
    expect(Object.keys(sidecar.flags).sort()).toEqual(Object.keys(SIDECAR_FLAGS).filter((f) => f !== 'help').sort());
    expect(Object.keys(controlPlane.flags).sort()).toEqual(Object.keys(CONTROL_PLANE_FLAGS).filter((f) => f !== 'help').sort());
  });

  it("a subcommand takes only flags its noun's parser accepts", () => {
    for (const noun of table.filter((c) => c.subcommands !== undefined)) {
      for (const sub of noun.subcommands!) for (const flag of Object.keys(sub.flags)) expect(Object.keys(noun.flags), `${sub.path} --${flag}`).toContain(flag);
    }
  });
});

describe('--help', () => {
  it.each(everyCommand.map((c) => [c.path]))('laneway %s --help exits 0 and prints its golden help', async (path) => {
    const words = path.split(' ');
    const [viaFlag, viaHelp] = await Promise.all([runLaneway([...words, '--help']), runLaneway(['help', ...words])]);
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    expect(viaFlag.stderr).toBe('');
    expect(viaHelp.stdout).toBe(viaFlag.stdout);
    expect(viaFlag.stdout).toContain(`usage: laneway ${words[0]}`);
    expect(viaFlag.stdout).toContain('example:\n  laneway ');
    golden(`help/${path.replace(/ /g, '-')}.txt`, viaFlag.stdout);
  });

  it('-h anywhere before -- (also after other flags and their values) answers with the help; after --, it belongs to the command', async () => {
    const [short, afterValue, afterDash] = await Promise.all([
      runLaneway(['sandbox', 'get', 'x', '-h']),
      runLaneway(['sandbox', '--server', 'http://127.0.0.1:1', 'list', '-h']),
      runLaneway(['connect', '--sandbox', 'x', '--workload', 'a/b', '--port', '1=1', '--server', 'http://127.0.0.1:1', '--', 'echo', '--help']),
    ]);
    expect(short.stdout).toMatch(/^laneway sandbox get: /);
    expect(afterValue.stdout).toMatch(/^laneway sandbox list: /);
    expect(afterDash.stdout).not.toContain('usage:');
    expect(afterDash.code).toBe(3);
  });

  it('a noun alone prints its help; the top level lists every command and the exit codes', async () => {
    const [noun, top, unknownHelp, unknown] = await Promise.all([runLaneway(['run']), runLaneway([]), runLaneway(['help', 'frobnicate']), runLaneway(['frobnicate'])]);
    expect(noun.code).toBe(0);
    expect(noun.stdout).toMatch(/^laneway run: /);
    for (const c of table) expect(top.stdout).toContain(`  ${c.path} `);
    expect(top.stdout).toContain('3 control plane unreachable');
    golden('usage.txt', top.stdout);
    expect(unknownHelp.code).toBe(2);
    expect(unknownHelp.stderr).toBe("laneway: help: unknown command 'frobnicate'\n");
    expect(unknown.code).toBe(2);
  });

  it('--version and version print the version, commit and Node version', async () => {
    const [flag, word] = await Promise.all([runLaneway(['--version']), runLaneway(['version'])]);
    expect(flag.stdout).toBe(word.stdout);
    expect(flag.stdout).toMatch(new RegExp(`^laneway \\d+\\.\\d+\\.\\d+ \\(.*node ${process.version.replace(/\./g, '\\.')}\\)\\n$`));
  });
});

describe('completion', () => {
  let cp: ControlPlaneProcess;
  let bin: string;

  beforeAll(async () => {
    cp = await startControlPlane(tempDir(), ['--probe-interval', '0']);
    // the scripts call `laneway` by name, as an installed CLI is called
    bin = tempDir('laneway-bin-');
    writeFileSync(`${bin}/laneway`, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
    for (const name of ['pr-42', 'pr-7']) {
      const res = await fetch(`${cp.url}/v1/sandboxes/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ spec: { forks: [{ workload: 'shop/orders', targets: { '8080': '127.0.0.1:9' } }] } }) });
      expect(res.status).toBeLessThan(300);
    }
  });
  afterAll(async () => {
    await cp?.stop();
    removeTempDirs();
  });

  it.each([['bash'], ['zsh'], ['fish']])('laneway completion %s prints its golden script', async (shell) => {
    const out = await runLaneway(['completion', shell]);
    expect(out.code, out.stderr).toBe(0);
    golden(`completion.${shell}`, out.stdout);
  });

  it('an unknown shell exits 2', async () => {
    const out = await runLaneway(['completion', 'tcsh']);
    expect(out.code).toBe(2);
    expect(out.stderr).toBe("laneway: completion: expected one of bash, zsh, fish, got 'tcsh'\n");
  });

  /** What bash offers for the words typed so far (the last one is being completed), with the real script loaded. */
  function complete(words: string[], env: NodeJS.ProcessEnv = {}): string[] {
    const script = `source <(laneway completion bash); COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _laneway; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const out = execFileSync('bash', ['-c', script], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, LANEWAY_URL: cp.url, ...env }, encoding: 'utf8' });
    return out.split('\n').filter(Boolean).sort();
  }

  it('bash completes commands, subcommands, flags and their choices', () => {
    expect(complete(['laneway', 'sa'])).toEqual(['sandbox']);
    expect(complete(['laneway', 'sandbox', ''])).toEqual(['apply', 'delete', 'get', 'list']);
    expect(complete(['laneway', 'sandbox', '--server', cp.url, 'l'])).toEqual(['list']);
    expect(complete(['laneway', 'sandbox', 'list', '-o', ''])).toEqual(['json', 'name', 'table', 'yaml']);
    expect(complete(['laneway', 'sidecar', '--fall'])).toEqual(['--fallback']);
    expect(complete(['laneway', 'run', 'list', '--status', 'f'])).toEqual(['failed']);
    expect(complete(['laneway', 'completion', ''])).toEqual(['bash', 'fish', 'zsh']);
  });

  it('bash completes sandbox and workload names from the control plane, and nothing when it is unreachable', () => {
    expect(complete(['laneway', 'sandbox', 'get', ''])).toEqual(['pr-42', 'pr-7']);
    expect(complete(['laneway', 'traffic', 'pr-4'])).toEqual(['pr-42']);
    expect(complete(['laneway', 'routes', ''])).toEqual(['shop/orders']);
    expect(complete(['laneway', 'sandbox', 'get', ''], { LANEWAY_URL: 'http://127.0.0.1:1' })).toEqual([]);
  });
});
