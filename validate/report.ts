// A run result as a readable summary for people and agents, and as JUnit XML for CI. No I/O.
import { describeDifference, DIFF_ASSERTION, differencesCount } from './actions/compare.js';
import type { RunResult, StepResult } from './runner.js';

const MARK: Record<StepResult['verdict'], string> = { pass: 'PASS', fail: 'FAIL', error: 'ERROR', skipped: 'SKIP' };

function stepLine(step: StepResult): string {
  const what = (() => {
    const inputs = step.inputs as { method?: string; url?: string; target?: string } | undefined;
    if (step.action === 'wait') return 'wait for Ready';
    if (inputs?.url === undefined) return step.action;
    const lane = step.action === 'http' ? ` [${inputs.target ?? 'sandbox'}]` : '';
    return `${step.action} ${inputs.method ?? 'GET'} ${inputs.url}${lane}`;
  })();
  const status = step.outputs?.status === undefined ? '' : ` → ${String(step.outputs.status)}`;
  const time = step.durationMs === undefined ? '' : ` (${Math.round(step.durationMs)} ms)`;
  return `  ${MARK[step.verdict].padEnd(5)} ${step.id}: ${what}${status}${time}`;
}

/** Plain text, one line per step and one per failed check: what an agent reads to decide what to fix. */
export function summarize(result: RunResult): string {
  const lines: string[] = [];
  const where = result.sandbox === null ? 'baseline only' : `sandbox ${result.sandbox.name} (key ${result.sandbox.routingKey})`;
  const s = result.summary;
  lines.push(
    `plan ${result.plan.name}@${result.plan.version} against ${where}: ${result.verdict.toUpperCase()} ` +
      `(${s.passed} passed, ${s.failed} failed, ${s.errored} errors, ${s.skipped} skipped; ${result.durationMs} ms)`,
  );
  for (const step of result.steps) {
    lines.push(stepLine(step));
    if (step.verdict === 'skipped') lines.push(`        ${step.reason ?? 'skipped'}`);
    if (step.error !== undefined) lines.push(`        ${step.error.code}: ${step.error.message}`);
    const listed = step.diffs !== undefined && step.diffs.length > 0 && step.verdict !== 'pass';
    for (const a of step.assertions) {
      if (a.pass) continue;
      // The compare check's message spells out every difference (for JSON readers); here they follow
      // one per line, so the check says only how many.
      lines.push(`        ✗ ${a.assertion}: ${listed && a.assertion === DIFF_ASSERTION ? differencesCount(step.diffs!.length) : a.message}`);
    }
    if (listed) {
      for (const d of step.diffs!.slice(0, 20)) lines.push(`          ${describeDifference(d)}`);
      if (step.diffs!.length > 20) lines.push(`          … ${step.diffs!.length - 20} more in the JSON result`);
    }
    if (step.load?.baseline !== undefined && step.load.sandbox !== undefined) {
      const b = step.load.baseline;
      const x = step.load.sandbox;
      lines.push(`        latency ms    p50      p90      p99      max     errors`);
      const row = (name: string, side: typeof b): string =>
        `        ${name.padEnd(10)}${[side.latency.p50, side.latency.p90, side.latency.p99, side.latency.max].map((n) => String(n).padStart(7)).join('  ')}  ${`${Math.round(side.errorRate * 10000) / 100}%`.padStart(7)}`;
      lines.push(row('baseline', b), row('sandbox', x));
    }
  }
  return `${lines.join('\n')}\n`;
}

/** XML 1.0 §2.2 excludes most control characters even as references: drop them, escape the markup ones. */
function xml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/**
 * JUnit XML as Jenkins, GitLab and GitHub reporters read it: one `testsuite` per run, one `testcase`
 * per step, `failure` for failed checks, `error` for steps that could not run, `skipped` for the rest.
 */
export function junit(result: RunResult): string {
  const s = result.summary;
  const suite = `${result.plan.name}@${result.plan.version}`;
  const cases = result.steps.map((step) => {
    const seconds = ((step.durationMs ?? 0) / 1000).toFixed(3);
    const open = `    <testcase classname="${xml(suite)}" name="${xml(`${step.id} (${step.action})`)}" time="${seconds}"`;
    if (step.verdict === 'pass') return `${open}/>`;
    let inner: string;
    if (step.verdict === 'skipped') inner = `      <skipped message="${xml(step.reason ?? 'skipped')}"/>`;
    else if (step.verdict === 'error') inner = `      <error type="${xml(step.error?.code ?? 'error')}" message="${xml(step.error?.message ?? '')}"/>`;
    else {
      const failed = step.assertions.filter((a) => !a.pass);
      const details = [
        ...failed.map((a) => `${a.assertion}: ${a.message}`),
        ...(step.diffs ?? []).map(describeDifference),
      ].join('\n');
      inner = `      <failure type="assertion" message="${xml(failed[0]?.message ?? 'failed')}">${xml(details)}</failure>`;
    }
    return `${open}>\n${inner}\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="laneway" tests="${s.steps}" failures="${s.failed}" errors="${s.errored}" skipped="${s.skipped}" time="${(result.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="${xml(suite)}" tests="${s.steps}" failures="${s.failed}" errors="${s.errored}" skipped="${s.skipped}" time="${(result.durationMs / 1000).toFixed(3)}" timestamp="${result.startedAt}">`,
    '    <properties>',
    `      <property name="sandbox" value="${xml(result.sandbox?.name ?? '')}"/>`,
    `      <property name="routingKey" value="${xml(result.sandbox?.routingKey ?? '')}"/>`,
    `      <property name="verdict" value="${result.verdict}"/>`,
    '    </properties>',
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

const MD_MARK: Record<StepResult['verdict'], string> = { pass: '✅ pass', fail: '❌ fail', error: '⚠️ error', skipped: '⏭️ skipped' };

/** A table cell: one line, pipes escaped, long values cut (a PR comment is read, not searched). */
function cell(text: string, max = 160): string {
  const one = text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/**
 * Inline code that holds any text (CommonMark §6.1): fenced by one more backtick than the longest run inside it,
 * padded with a space where the text starts or ends with a backtick, so a regex or URL with backticks stays code.
 */
export function inlineCode(text: string): string {
  let longest = 0;
  for (const run of text.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  const fence = '`'.repeat(longest + 1);
  const pad = longest > 0 && (text.startsWith('`') || text.endsWith('`')) ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

function what(step: StepResult): string {
  const inputs = step.inputs as { method?: string; url?: string; target?: string } | undefined;
  if (step.action === 'wait') return 'wait for Ready';
  if (inputs?.url === undefined) return step.action;
  return `${step.action} ${inlineCode(`${inputs.method ?? 'GET'} ${inputs.url}`)}${step.action === 'http' ? ` (${inputs.target ?? 'sandbox'})` : ''}`;
}

export interface MarkdownOptions {
  /** the stored run's id, when it has one */
  readonly runId?: string;
  /** where the traffic of the sandbox can be read (issue 14's capture), when known */
  readonly trafficUrl?: string;
}

/**
 * The run as a pull-request comment (or `$GITHUB_STEP_SUMMARY`): verdict first, in words as well as
 * a mark; one table row per step; failing checks with what was expected and what came back; compare
 * differences; load percentiles side by side. Deterministic for one result (golden-tested).
 */
export function markdown(result: RunResult, options: MarkdownOptions = {}): string {
  const s = result.summary;
  const lines: string[] = [];
  lines.push(`### ${result.verdict === 'pass' ? '✅' : '❌'} Laneway: \`${result.plan.name}@${result.plan.version}\` ${result.verdict === 'pass' ? 'passed' : 'failed'}`);
  lines.push('');
  const where = result.sandbox === null ? 'baseline only' : `sandbox \`${result.sandbox.name}\`, routing key \`${result.sandbox.routingKey}\` (send \`baggage: laneway=${result.sandbox.routingKey}\`)`;
  lines.push(`${where} · ${s.steps} steps: ${s.passed} passed, ${s.failed} failed, ${s.errored} errors, ${s.skipped} skipped · ${result.durationMs} ms${options.runId === undefined ? '' : ` · run \`${options.runId}\``}`);
  if (options.trafficUrl !== undefined) lines.push(`Traffic of the sandbox: ${options.trafficUrl}`);
  lines.push('', '| step | action | result | status | time |', '| --- | --- | --- | --- | ---: |');
  for (const step of result.steps) {
    const status = step.outputs?.status === undefined ? '' : String(step.outputs.status);
    const time = step.durationMs === undefined ? '' : `${Math.round(step.durationMs)} ms`;
    lines.push(`| ${cell(step.id)} | ${cell(what(step))} | ${MD_MARK[step.verdict]} | ${status} | ${time} |`);
  }
  const failures: string[] = [];
  for (const step of result.steps) {
    if (step.verdict === 'skipped' && step.reason !== undefined) failures.push(`- **${step.id}** skipped: ${cell(step.reason, 300)}`);
    if (step.error !== undefined) failures.push(`- **${step.id}** \`${step.error.code}\`: ${cell(step.error.message, 300)}`);
    for (const a of step.assertions) if (!a.pass) failures.push(`- **${step.id}** ${inlineCode(cell(a.assertion, 120))}: ${cell(a.message, 300)}`);
  }
  if (failures.length > 0) lines.push('', '#### What failed', '', ...failures);
  for (const step of result.steps) {
    if (step.diffs === undefined || step.diffs.length === 0) continue;
    lines.push('', `#### Differences in \`${step.id}\` (baseline → sandbox)`, '');
    for (const d of step.diffs.slice(0, 30)) lines.push(`- ${cell(describeDifference(d), 300)}`);
    if (step.diffs.length > 30) lines.push(`- … ${step.diffs.length - 30} more in the JSON result`);
  }
  for (const step of result.steps) {
    const b = step.load?.baseline;
    const x = step.load?.sandbox;
    if (b === undefined || x === undefined) continue;
    lines.push('', `#### Load \`${step.id}\``, '', '| side | p50 ms | p90 ms | p99 ms | max ms | errors |', '| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const [name, side] of [['baseline', b], ['sandbox', x]] as const) {
      lines.push(`| ${name} | ${side.latency.p50} | ${side.latency.p90} | ${side.latency.p99} | ${side.latency.max} | ${Math.round(side.errorRate * 10000) / 100}% |`);
    }
  }
  return `${lines.join('\n')}\n`;
}
