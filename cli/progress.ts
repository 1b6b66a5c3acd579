// `plan run`'s progress on a terminal: each step as it starts and ends, and one live line for load and wait steps.
import type { RunProgress, StepResult } from '../validate/runner.js';

/** A live line is redrawn at most this often: enough to look live, little enough to cost nothing. */
const REDRAW_MS = 100;

const VERDICT_COLOUR: Readonly<Record<string, string>> = { pass: '32', fail: '31', error: '31', skipped: '33' };

/**
 * Progress for `out`, or undefined when nobody watches: stdout and `out` must both be terminals, and the output
 * format a person reads (a script asking for -o json, or reading through a pipe, gets no control characters).
 * Colour only where NO_COLOR is unset (https://no-color.org).
 */
export function terminalProgress(out: NodeJS.WriteStream, stdoutIsTty: boolean, env: NodeJS.ProcessEnv = process.env): RunProgress | undefined {
  if (!stdoutIsTty || out.isTTY !== true) return undefined;
  const colour = env.NO_COLOR === undefined || env.NO_COLOR === '';
  const paint = (verdict: string, text: string): string => (colour ? `\x1b[${VERDICT_COLOUR[verdict] ?? '0'}m${text}\x1b[0m` : text);
  let live = false;
  let drawnAt = 0;
  const clear = (): void => {
    if (live) out.write('\r\x1b[2K');
    live = false;
  };
  return {
    stepStarted(id, action, description) {
      clear();
      out.write(`  ...   ${id}: ${action}${description === undefined ? '' : ` (${description})`}\n`);
    },
    stepUpdate(id, line) {
      const now = Date.now();
      if (now - drawnAt < REDRAW_MS) return;
      drawnAt = now;
      clear();
      out.write(`        ${id}: ${line}`.slice(0, Math.max(40, (out.columns || 80) - 1)));
      live = true;
    },
    stepFinished(result: StepResult) {
      clear();
      out.write(`  ${paint(result.verdict, result.verdict.toUpperCase().padEnd(5))} ${result.id} (${Math.round(result.durationMs ?? 0)} ms)\n`);
    },
  };
}
