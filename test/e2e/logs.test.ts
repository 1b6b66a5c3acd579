// One logging convention (issue 11 item 15): logs are JSON lines on stderr, for the sidecar and the control plane alike;
// stdout carries only what a command prints for people, and no stray non-JSON line reaches stderr.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { CLI } from '../helpers/processes.js';
import { startUpstream } from '../helpers/servers.js';

interface Streams {
  stdout: string;
  stderr: string;
}

/** Runs `laneway <args>` until `ready` shows on either stream, lets `exercise` run, then SIGTERMs it and returns both streams apart. */
async function run(args: string[], ready: RegExp, exercise: (seen: Streams) => Promise<void>): Promise<Streams> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const seen: Streams = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (seen.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (seen.stderr += d.toString()));
  const exited = once(child, 'exit');
  try {
    const deadline = Date.now() + 30_000;
    while (!ready.test(seen.stdout + seen.stderr)) {
      if (child.exitCode !== null) throw new Error(`exited early:\n${seen.stdout}${seen.stderr}`);
      if (Date.now() > deadline) throw new Error(`not ready:\n${seen.stdout}${seen.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await exercise(seen);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return seen;
}

function expectJsonLines(text: string): Record<string, unknown>[] {
  const lines = text.split('\n').filter((l) => l !== '');
  expect(lines.length).toBeGreaterThan(0);
  return lines.map((line) => {
    let parsed: unknown;
    expect(() => (parsed = JSON.parse(line)), `not a JSON log line: ${line}`).not.toThrow();
    return parsed as Record<string, unknown>;
  });
}

describe('logs: JSON on stderr, nothing stray', () => {
  it('the sidecar writes nothing to stdout and only JSON lines to stderr (start, requests with --access-log, drain)', async () => {
    const app = await startUpstream('app');
    const dir = mkdtempSync(join(tmpdir(), 'laneway-logs-'));
    const routes = join(dir, 'routes.json');
    writeFileSync(routes, JSON.stringify({ workload: 'default/orders', revision: 1, routes: [] }));
    try {
      const streams = await run(
        ['sidecar', '--workload', 'default/orders', '--port', `0:${app.port}`, '--admin', '127.0.0.1:0', '--routes-file', routes, '--access-log'],
        /"msg":"sidecar listening"/,
        async (seen) => {
          const port = Number(/127\.0\.0\.1:(\d+)->/.exec(seen.stderr)?.[1]);
          expect((await request(`http://127.0.0.1:${port}/x`)).statusCode).toBe(200);
        },
      );
      expect(streams.stdout).toBe('');
      const lines = expectJsonLines(streams.stderr);
      expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['sidecar listening', 'request', 'stopped']));
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the control plane prints its one "listening on" line to stdout and only JSON lines to stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'laneway-logs-'));
    try {
      const streams = await run(
        ['control-plane', '--listen', '127.0.0.1:0', '--data', join(dir, 'data'), '--log-level', 'info', '--probe-interval', '0'],
        /listening on http:\/\/\S+:\d+/,
        async () => {},
      );
      expect(streams.stdout.split('\n').filter((l) => l !== '')).toEqual([expect.stringMatching(/^laneway control-plane listening on http:\/\/127\.0\.0\.1:\d+ /)]);
      expectJsonLines(streams.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
