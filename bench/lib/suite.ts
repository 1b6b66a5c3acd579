// What every suite receives (run options, the running servers, a way to report a broken contender) and returns.
import type { Contender, Lab } from './contenders.js';

/** What suites that start their own subjects (micro, push) need. */
export interface BaseContext {
  readonly quick: boolean;
  /** A contender errored or answered wrongly: the run exits non-zero (timings never fail it). */
  fail(message: string): void;
  log(message: string): void;
  /** a live status line (which suite, round and subject) on a terminal; nothing when stderr is not one */
  progress(line: string): void;
}

/** Suites that measure the shared servers under test. */
export interface SuiteContext extends BaseContext {
  readonly lab: Lab;
}

export interface SuiteResult<T = unknown> {
  readonly name: string;
  /** a suite that could not run here says why, and the run goes on */
  readonly skipped?: string;
  readonly data?: T;
  /** Markdown for the report and the terminal */
  readonly markdown: string;
}

/** Contenders in a fixed order with `direct` first: rounds interleave them A B C … A B C …. */
export function interleaved(contenders: readonly Contender[]): readonly Contender[] {
  return [...contenders].sort((a, b) => (a.name === 'direct' ? -1 : b.name === 'direct' ? 1 : 0));
}
