// What one plan action module provides — schema, outputs, checks, prepare, execute — and what validation and the runner lend it.
import type { Dispatcher } from 'undici';
import type { AssertionResult, ResponseView } from '../assertions.js';
import type { Step } from '../plan.js';
import type { PolicyStep } from '../policy.js';
import type { StepResult } from '../runner.js';
import type { Sandboxes, SandboxView } from './wait.js';

/** The checks validation lends an action: they know the plan's parameters and the earlier steps' outputs. */
export interface CheckScope {
  /** the `${{ }}` references in a string; `allowSteps` false where the value must be known before the plan runs */
  refs(text: string, at: string, allowSteps: boolean): void;
  /** the references in every string of a JSON value (a body) */
  walk(value: unknown, at: string): void;
  /** an integer ≥ `min`, or a `${{ params.<name> }}` reference */
  count(value: unknown, at: string, min: number): void;
  /** a positive number of milliseconds, a duration, or a `${{ params.<name> }}` reference */
  duration(value: unknown, at: string): void;
}

/** The conversions prepare lends an action, once parameters are substituted; they throw PARAM_INVALID naming `at`. */
export interface PrepareScope {
  /** milliseconds from a duration or a number; `fallback` when absent */
  ms(value: unknown, at: string, fallback: number): number;
  /** a positive integer; `fallback` when absent (required without one) */
  count(value: unknown, at: string, fallback?: number): number;
  /** a default timeout, capped by the policy's maxTimeout */
  capMs(ms: number): number;
}

/** What the policy sees of a prepared step besides its path and action. */
export type PolicyInputs = Omit<PolicyStep, 'path' | 'action'>;

/** One step as it runs: its result and outputs to fill, and what the runner shares between steps. */
export interface StepRun {
  readonly step: Step;
  readonly result: StepResult;
  /** what later steps may reference as `${{ steps.<id>.<field> }}`; kept even when the step errs */
  readonly out: Record<string, unknown>;
  /** the run's connection pool */
  readonly dispatcher: Dispatcher;
  readonly signal: AbortSignal | undefined;
  readonly sandboxes: Sandboxes;
  readonly sandbox: SandboxView | null;
  /** epoch ms the run started: what happened in the lane since then is this run's */
  readonly runStartedAt: number;
  /** `req` with every `${{ steps.* }}` in its url, headers and body substituted */
  concrete<R extends { readonly url: string; readonly headers: Readonly<Record<string, string>>; readonly body?: unknown }>(req: R): R;
  /** the sandbox's routing key; SANDBOX_REQUIRED without a sandbox */
  lane(): string;
  /** the policy's hosts rule again on the concrete URL */
  backstop(url: string): void;
  /** the step's `assert` list on a response */
  assertions(response: ResponseView): AssertionResult[];
  /** the step's `capture` map from a response into `out`; STEP_CAPTURE when one matches nothing */
  capture(response: ResponseView): void;
  /** a live line about a long step (load, wait); absent when nobody shows progress */
  readonly progress?: (line: string) => void;
}

/**
 * One plan action. Validation assembles the plan schema from `schema`, resolves references against
 * `outputs` and calls `check`; the runner calls `prepare` for every step before the policy check, then
 * `execute` in order. An action error is a thrown ValidateError; a failed check is an assertion.
 */
export interface ActionModule<Input, Prepared> {
  /** the JSON Schema of the action's object in a step (`http: {…}`): the shape; `check` tests the meaning */
  readonly schema: Readonly<Record<string, unknown>>;
  /** fields the step outputs besides its captures (`${{ steps.<id>.status }}`) */
  readonly outputs: readonly string[];
  /** whether `capture` and `assert` apply: they read the one response the step's request gets */
  readonly readsResponse: boolean;
  /** whether the step acts in the sandbox's context (a sandbox must be named to run it) */
  needsSandbox(input: Input): boolean;
  /** requests the step sends once prepared: what the policy's `maxRequests` counts */
  requests(policy: PolicyInputs): number;
  /** one line for people (skills): what the step does; `labelled` false when the text already says which action it is */
  describe(input: Input): { readonly text: string; readonly labelled: boolean };
  /** what the schema cannot say: references, URLs, durations, counts; throws PLAN_INVALID naming the path */
  check(input: Input, at: string, scope: CheckScope): void;
  /** typed inputs once parameters and the sandbox are substituted (`raw`); `${{ steps.* }}` may remain */
  prepare(raw: Readonly<Record<string, unknown>>, at: string, scope: PrepareScope): { readonly prepared: Prepared; readonly policy: PolicyInputs };
  /** runs the step, recording inputs, exchanges, outputs and assertions in `run` */
  execute(prepared: Prepared, run: StepRun): Promise<void>;
}
