// Runs pages: the run list with verdicts, and one run's steps — failing assertions with expected and actual, compare diffs, load percentiles as a small chart.
import type { Run } from '../../client/api.js';
import type { RunSummary } from '../../model/plans.js';
import type { StepResult } from '../../validate/runner.js';
import type { LoadSide } from '../../validate/actions/load.js';
import { get } from '../api.js';
import { badge, h, json, replace, s, table, time } from '../dom.js';
import { errorBox, type Context, type Page } from '../page.js';

function statusBadge(status: string): HTMLElement {
  return status === 'passed' || status === 'pass'
    ? badge('ok', status)
    : status === 'running'
      ? badge('muted', status)
      : status === 'skipped'
        ? badge('muted', status)
        : badge('bad', status);
}

export async function runsPage(main: HTMLElement, _arg: string, _ctx: Context): Promise<Page> {
  const list = h('div');
  replace(main, h('h1', {}, 'Runs'), list);
  const load = async (): Promise<void> => {
    const { items } = await get<{ items: RunSummary[] }>('/v1/runs?limit=100');
    if (items.length === 0) {
      replace(list, h('p', {}, 'No runs yet. Start one with ', h('code', {}, 'laneway run <plan> --server …'), '.'));
      return;
    }
    replace(
      list,
      table(
        'Plan runs, newest first',
        ['Run', 'Plan', 'Sandbox', 'Status', 'Started', 'Finished'],
        items.map((r) => [
          h('a', { href: `#/runs/${encodeURIComponent(r.id)}` }, h('code', {}, r.id)),
          `${r.plan} @ ${r.version}`,
          r.sandbox ?? '—',
          statusBadge(r.status),
          time(r.createdAt),
          time(r.finishedAt),
        ]),
      ),
    );
  };
  await load();
  return {
    refresh: async (kind) => {
      if (kind === 'run' || kind === 'resync') await load().catch((err) => replace(list, errorBox(err)));
    },
  };
}

/** p50/p90/p99 of both lanes, bars side by side: a glance, with the numbers as text beside each bar. */
function loadChart(load: { baseline?: LoadSide; sandbox?: LoadSide }): Element {
  const keys = ['p50', 'p90', 'p99'] as const;
  const sides = (['baseline', 'sandbox'] as const).filter((side) => load[side] !== undefined);
  const max = Math.max(1, ...sides.flatMap((side) => keys.map((k) => load[side]!.latency[k])));
  const rowH = 18;
  const width = 420;
  const labelW = 110;
  const bars: SVGElement[] = [];
  let y = 0;
  for (const k of keys) {
    for (const side of sides) {
      const value = load[side]!.latency[k];
      const w = Math.max(1, ((width - labelW - 80) * value) / max);
      bars.push(
        s('text', { x: 0, y: y + 13 }, `${k} ${side}`),
        s('rect', { x: labelW, y: y + 3, width: w.toFixed(1), height: rowH - 6, class: side }),
        s('text', { x: labelW + w + 6, y: y + 13 }, `${value} ms`),
      );
      y += rowH;
    }
    y += 6;
  }
  return s('svg', { class: 'chart diagram', viewBox: `0 0 ${width} ${y}`, width, height: y, role: 'img', 'aria-label': 'latency percentiles, baseline and sandbox' }, s('title', {}, 'Load latency percentiles'), ...bars);
}

function stepView(step: StepResult): HTMLElement {
  const failing = step.assertions.filter((a) => !a.pass);
  return h(
    'section',
    { class: 'card step', 'data-step': step.id, 'aria-labelledby': `step-${step.id}` },
    h('h2', { id: `step-${step.id}` }, statusBadge(step.verdict), ' ', h('code', {}, step.id), ' ', h('span', { class: 'muted' }, `${step.action}${step.durationMs === undefined ? '' : `, ${step.durationMs} ms`}`)),
    step.description === undefined ? null : h('p', {}, step.description),
    step.reason === undefined ? null : h('p', { class: 'muted' }, step.reason),
    step.error === undefined ? null : h('div', { class: 'error', role: 'alert' }, h('code', {}, step.error.code), ' ', step.error.message),
    failing.length === 0 ? null : table(
      'Failing assertions',
      ['Assertion', 'Expected', 'Actual', 'Why'],
      failing.map((a) => [h('code', {}, a.assertion), h('code', { class: 'expected' }, json(a.expected)), h('code', { class: 'actual' }, json(a.actual)), a.message]),
    ),
    step.assertions.length - failing.length === 0 ? null : h('p', { class: 'muted' }, `${step.assertions.length - failing.length} assertion(s) passed: `, ...step.assertions.filter((a) => a.pass).map((a) => h('code', {}, `${a.assertion}; `))),
    step.diffs === undefined || step.diffs.length === 0 ? null : table(
      `Differences baseline → sandbox${step.ignoredDiffs ? ` (${step.ignoredDiffs} ignored)` : ''}`,
      ['Change', 'Path', 'Baseline', 'Sandbox'],
      step.diffs.map((d) => [d.op, h('code', {}, d.path), h('code', {}, json(d.baseline)), h('code', {}, json(d.sandbox))]),
    ),
    step.load === undefined ? null : loadChart(step.load),
  );
}

export async function runPage(main: HTMLElement, id: string, _ctx: Context): Promise<Page> {
  const body = h('div');
  replace(main, h('p', {}, h('a', { href: '#/runs' }, '← all runs')), h('h1', {}, 'Run ', h('code', {}, id)), body);
  const load = async (): Promise<void> => {
    const run = await get<Run>(`/v1/runs/${encodeURIComponent(id)}`);
    const result = run.result;
    replace(
      body,
      h('p', { class: 'verdict' }, 'Status ', statusBadge(run.status), ` · plan ${run.plan} @ ${run.version} · sandbox ${run.sandbox ?? '—'} · started `, time(run.createdAt)),
      run.error === null ? null : h('div', { class: 'error', role: 'alert' }, h('code', {}, run.error.code), ' ', run.error.message),
      result === null
        ? h('p', { class: 'muted' }, run.status === 'running' ? 'Running… the result appears here when it finishes.' : 'No result stored.')
        : h('div', {},
            h('p', {}, `${result.summary.steps} steps: ${result.summary.passed} passed, ${result.summary.failed} failed, ${result.summary.errored} errored, ${result.summary.skipped} skipped, ${result.durationMs} ms`),
            ...result.steps.map(stepView)),
    );
  };
  await load();
  return {
    refresh: async (kind) => {
      if (kind === 'run' || kind === 'resync') await load().catch((err) => replace(body, errorBox(err)));
    },
  };
}
