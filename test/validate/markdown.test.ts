// The pull-request report (validate/report.ts markdown) against golden files: pass, fail, a compare diff, load side by side.
// UPDATE_GOLDEN=1 rewrites the files; review the diff before committing.
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inlineCode, markdown } from '../../validate/report.js';
import type { RunResult, StepResult } from '../../validate/runner.js';

const golden = (name: string): URL => new URL(`golden/${name}.md`, import.meta.url);

function result(verdict: 'pass' | 'fail', steps: StepResult[]): RunResult {
  const count = (v: StepResult['verdict']): number => steps.filter((s) => s.verdict === v).length;
  return {
    plan: { name: 'catalog-check', version: '1.0.0' },
    sandbox: { name: 'pr-42', routingKey: 'k4q7x2m9b3t8w1z6p5n0' },
    params: {},
    policy: null,
    verdict,
    startedAt: '2026-12-03T12:00:00.000Z',
    durationMs: 812,
    summary: { steps: steps.length, passed: count('pass'), failed: count('fail'), errored: count('error'), skipped: count('skipped') },
    steps,
  };
}

const ok = (assertion: string) => ({ assertion, pass: true, expected: null, actual: null, message: 'ok' });
const wait: StepResult = { id: 'ready', action: 'wait', verdict: 'pass', durationMs: 12.4, assertions: [], outputs: { phase: 'Ready' } };
const get = (pass: boolean): StepResult => ({
  id: 'get-item',
  action: 'http',
  verdict: pass ? 'pass' : 'fail',
  durationMs: 31,
  inputs: { method: 'GET', url: 'http://orders:8080/items/7', target: 'sandbox' },
  outputs: { status: 200 },
  assertions: pass
    ? [ok('status == 200')]
    : [ok('status == 200'), { assertion: 'jsonpath $.total exists', pass: false, expected: 'present', actual: 'absent', message: '$.total is absent (the body has id, amount, currency)' }],
});
const compare: StepResult = {
  id: 'same-shape',
  action: 'compare',
  verdict: 'fail',
  durationMs: 44,
  inputs: { method: 'GET', url: 'http://orders:8080/items/7' },
  outputs: { status: 200, baselineStatus: 200, differences: 2 },
  assertions: [{ assertion: 'no differences', pass: false, expected: 0, actual: 2, message: '2 differences' }],
  diffs: [
    { op: 'remove', path: '$.total', pointer: '/total', baseline: 12.5 },
    { op: 'add', path: '$.amount', pointer: '/amount', sandbox: 12.5 },
  ],
};
const side = (p50: number, errorRate: number) => ({ requests: 200, ok: 200, errors: 0, timeouts: 0, non2xx: 0, errorRate, latency: { p50, p90: p50 + 2, p97_5: p50 + 3, p99: p50 + 5, average: p50, max: p50 + 9 }, durationMs: 2000 });
const load: StepResult = {
  id: 'under-load',
  action: 'load',
  verdict: 'pass',
  durationMs: 4100,
  inputs: { method: 'GET', url: 'http://orders:8080/items/1' },
  assertions: [ok('p99 within +50% (grace 10ms)')],
  load: { baseline: side(3, 0), sandbox: side(4, 0.005) },
};

const cases: [string, RunResult][] = [
  ['pass', result('pass', [wait, get(true)])],
  ['fail', result('fail', [wait, get(false), { id: 'later', action: 'http', verdict: 'skipped', reason: 'an earlier step failed', assertions: [] }])],
  ['compare-diff', result('fail', [wait, compare])],
  ['load', result('pass', [wait, load])],
];

describe('markdown report', () => {
  for (const [name, run] of cases) {
    it(`${name} matches golden/${name}.md`, () => {
      const text = markdown(run, name === 'pass' ? { runId: '5f0c7a9e-run' } : {});
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden(name), text);
      expect(text).toBe(readFileSync(golden(name), 'utf8'));
    });
  }

  it('keeps a hostile value from breaking the table (pipes escaped, newlines folded, long values cut)', () => {
    const hostile: StepResult = { ...get(false), id: 'x|y', inputs: { method: 'GET', url: `http://a/${'b'.repeat(500)}|\n` } };
    const text = markdown(result('fail', [hostile]));
    const row = text.split('\n').find((l) => l.startsWith('| x\\|y'))!;
    expect(row.split(/(?<!\\)\|/).length).toBe(7); // 5 cells
    expect(row.length).toBeLessThan(400);
  });

  it('keeps backticks in a URL or an assertion inside inline code (a longer fence, padded where it touches one)', () => {
    expect(inlineCode('GET /a')).toBe('`GET /a`');
    expect(inlineCode('matches ^`x`$')).toBe('``matches ^`x`$``');
    expect(inlineCode('`a``b`')).toBe('``` `a``b` ```');
    const step: StepResult = { ...get(false), inputs: { method: 'GET', url: 'http://a/`tick`' } };
    expect(markdown(result('fail', [step]))).toContain('`` GET http://a/`tick` ``');
  });
});
