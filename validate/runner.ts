// Runs a plan: params and sandbox resolved, policy checked before any step, then the steps one at a time into a structured result.
import { JSONPath } from 'jsonpath-plus';
import { Agent } from 'undici';
import { ControlPlaneError } from '../model/api-errors.js';
import type { PrepareScope, StepRun } from './actions/action.js';
import type { Difference } from './actions/compare.js';
import type { Exchange } from './actions/http.js';
import { actionModule } from './actions/index.js';
import type { LoadSide } from './actions/load.js';
import type { Sandboxes, SandboxView } from './actions/wait.js';
import { evaluate, type AssertionResult, type AssertionSpec, type ResponseView } from './assertions.js';
import { parseDuration } from '../core/units.js';
import { ValidateError } from './errors.js';
import { actionOf, needsSandbox, resolveParams, type ActionName, type CaptureSpec, type ParamValue, type Plan, type Step } from './plan.js';
import { checkPolicy, refuse, type Policy, type PolicyStep } from './policy.js';
import { formatRef, interpolate, KEEP, type Ref } from './template.js';

export interface RunContext {
  /** the sandbox whose routing key `sandbox`-context requests carry */
  readonly sandbox?: string;
  readonly sandboxes: Sandboxes;
  readonly policy: Policy | null;
  readonly signal?: AbortSignal;
  /** hears each step start and end, and live lines of long steps (the CLI's progress on a terminal); absent = silent */
  readonly progress?: RunProgress;
}

/** What a run reports while it runs; every method is called synchronously and must not throw. */
export interface RunProgress {
  stepStarted(id: string, action: string, description: string | undefined): void;
  /** the current state of a long step (`412/1000 sent, 0 errors, 3.1s`); replaces the previous line */
  stepUpdate(id: string, line: string): void;
  stepFinished(result: StepResult): void;
}

export type StepVerdict = 'pass' | 'fail' | 'error' | 'skipped';

export interface StepResult {
  readonly id: string;
  readonly action: ActionName;
  readonly description?: string;
  verdict: StepVerdict;
  /** why a step was skipped */
  reason?: string;
  error?: { readonly code: string; readonly message: string };
  startedAt?: string;
  durationMs?: number;
  /** the step's inputs with every reference substituted */
  inputs?: Record<string, unknown>;
  /** what later steps may reference as `${{ steps.<id>.<field> }}` (built-ins and captures) */
  outputs?: Record<string, unknown>;
  /** requests as sent and responses as received, per lane */
  exchanges?: { baseline?: Exchange; sandbox?: Exchange };
  load?: { baseline?: LoadSide; sandbox?: LoadSide };
  assertions: AssertionResult[];
  /** compare: differences from the baseline's response to the sandbox's that no ignore path covers */
  diffs?: Difference[];
  ignoredDiffs?: number;
}

export interface RunResult {
  readonly plan: { readonly name: string; readonly version: string };
  readonly sandbox: { readonly name: string; readonly routingKey: string } | null;
  readonly params: Readonly<Record<string, ParamValue>>;
  /** the policy the plan was checked against, or null */
  readonly policy: string | null;
  readonly verdict: 'pass' | 'fail';
  readonly startedAt: string;
  readonly durationMs: number;
  readonly summary: { readonly steps: number; readonly passed: number; readonly failed: number; readonly errored: number; readonly skipped: number };
  readonly steps: readonly StepResult[];
}

/** A step ready to run: what the policy saw of it, and its action's execute bound to its prepared inputs. */
interface PreparedStep {
  readonly step: Step;
  readonly path: string;
  readonly action: ActionName;
  readonly policy: PolicyStep;
  readonly execute: (run: StepRun) => Promise<void>;
}

export interface Prepared {
  readonly plan: Plan;
  readonly params: Readonly<Record<string, ParamValue>>;
  readonly sandbox: SandboxView | null;
  readonly steps: readonly PreparedStep[];
}

function paramProblem(at: string, problem: string): ValidateError {
  return new ValidateError('LANEWAY_ERR_PARAM_INVALID', `${at}: ${problem}`, at);
}

/** The conversions of parameter-substituted inputs; a default timeout is capped by the policy's maxTimeout. */
function prepareScope(policy: Policy | null): PrepareScope {
  return {
    ms(value, at, fallback) {
      if (value === undefined) return fallback;
      if (typeof value === 'number' && value > 0) return value;
      const ms = typeof value === 'string' ? parseDuration(value) : undefined;
      if (ms === undefined) throw paramProblem(at, `${JSON.stringify(value)} is not a duration (500ms, 5s) or a positive number of milliseconds`);
      return ms;
    },
    count(value, at, fallback) {
      if (value === undefined && fallback !== undefined) return fallback;
      if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return value;
      throw paramProblem(at, `${JSON.stringify(value)} is not a positive integer`);
    },
    capMs: (ms) => (policy?.maxTimeoutMs == null ? ms : Math.min(ms, policy.maxTimeoutMs)),
  };
}

/**
 * Everything that can be known before a step runs: parameters, the sandbox's key, typed numbers and
 * durations, and the policy verdict. Throws (PARAM_INVALID, SANDBOX_REQUIRED, SANDBOX_NOT_FOUND,
 * POLICY_VIOLATION) without sending a single request.
 */
export async function prepare(plan: Plan, given: Readonly<Record<string, unknown>>, ctx: RunContext): Promise<Prepared> {
  const params = resolveParams(plan, given);
  let sandbox: SandboxView | null = null;
  if (ctx.sandbox !== undefined) {
    sandbox = (await ctx.sandboxes.get(ctx.sandbox, ctx.signal)) ?? null;
    if (sandbox === null) throw new ControlPlaneError('LANEWAY_ERR_SANDBOX_NOT_FOUND', `sandbox ${ctx.sandbox} does not exist (create it first: laneway sandbox apply)`, 'sandbox');
  } else if (needsSandbox(plan)) {
    throw new ValidateError('LANEWAY_ERR_SANDBOX_REQUIRED', `plan ${plan.name} sends requests in a sandbox's context: name the sandbox (--sandbox <name>)`, 'sandbox');
  }
  const early = (ref: Ref): unknown => {
    if (ref.kind === 'params') return params[ref.name];
    if (ref.kind === 'sandbox') return sandbox === null ? KEEP : ref.field === 'name' ? sandbox.name : sandbox.routingKey;
    return KEEP;
  };
  const scope = prepareScope(ctx.policy);

  const steps = plan.steps.map((step, i): PreparedStep => {
    const path = `steps[${i}]`;
    const action = actionOf(step);
    const module = actionModule(action);
    const raw = interpolate(step[action], early) as Record<string, unknown>;
    const { prepared, policy } = module.prepare(raw, `${path}.${action}`, scope);
    return { step, path, action, policy: { path, action, ...policy }, execute: (run) => module.execute(prepared, run) };
  });

  if (ctx.policy !== null) {
    const violations = checkPolicy(ctx.policy, steps.map((s) => s.policy));
    if (violations.length > 0) refuse(ctx.policy, violations);
  }
  return { plan, params, sandbox, steps };
}

function capture(spec: CaptureSpec, response: ResponseView): unknown {
  if (typeof spec !== 'string') return response.headers[spec.header.toLowerCase()];
  if (!response.json) return undefined;
  const matches = JSONPath({ path: spec, json: response.body as object, wrap: true, eval: 'safe' }) as unknown[];
  return matches[0];
}

/** Runs the prepared steps in order. Never throws for a step's failure: it is in the result. */
export async function execute(prepared: Prepared, ctx: RunContext): Promise<RunResult> {
  const { plan, params, sandbox } = prepared;
  const started = Date.now();
  const startedAt = performance.now();
  const outputs = new Map<string, Record<string, unknown>>();
  // One connection pool for the run: keep-alive between steps, closed when the run ends.
  const dispatcher = new Agent({ keepAliveTimeout: 4_000, connections: 8 });
  const results: StepResult[] = [];
  let failedStep: string | undefined;

  const resolve = (ref: Ref): unknown => {
    if (ref.kind === 'params') return params[ref.name];
    if (ref.kind === 'sandbox') return ref.field === 'name' ? sandbox?.name : sandbox?.routingKey;
    const value = outputs.get(ref.id)?.[ref.field];
    if (value === undefined) throw new ValidateError('LANEWAY_ERR_STEP_REFERENCE', `${formatRef(ref)} has no value: step ${ref.id} did not produce ${ref.field}`);
    return value;
  };
  const concrete = <R extends { readonly url: string; readonly headers: Readonly<Record<string, string>>; readonly body?: unknown }>(req: R): R => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      const v = interpolate(value, resolve);
      headers[name] = typeof v === 'string' ? v : JSON.stringify(v);
    }
    const url = String(interpolate(req.url, resolve));
    return { ...req, url, headers, ...(req.body === undefined ? {} : { body: interpolate(req.body, resolve) }) };
  };
  const captureAll = (step: Step, response: ResponseView, out: Record<string, unknown>): void => {
    for (const [name, spec] of Object.entries(step.capture ?? {})) {
      const value = capture(spec, response);
      if (value === undefined) {
        const what = typeof spec === 'string' ? `${spec} matched nothing in the response body` : `the response has no ${spec.header} header`;
        throw new ValidateError('LANEWAY_ERR_STEP_CAPTURE', `capture ${name}: ${what}`);
      }
      out[name] = value;
    }
  };
  const lane = (): string => {
    if (sandbox === null) throw new ValidateError('LANEWAY_ERR_SANDBOX_REQUIRED');
    return sandbox.routingKey;
  };

  try {
    for (const p of prepared.steps) {
      const { step } = p;
      const result: StepResult = { id: step.id, action: p.action, ...(step.description ? { description: step.description } : {}), verdict: 'pass', assertions: [] };
      results.push(result);
      if (failedStep !== undefined && plan.continueOnFailure !== true) {
        result.verdict = 'skipped';
        result.reason = `step ${failedStep} did not pass (set continueOnFailure: true to run every step)`;
        continue;
      }
      result.startedAt = new Date().toISOString();
      ctx.progress?.stepStarted(step.id, p.action, step.description);
      const t0 = performance.now();
      const out: Record<string, unknown> = {};
      try {
        await p.execute({
          step,
          result,
          out,
          dispatcher,
          signal: ctx.signal,
          sandboxes: ctx.sandboxes,
          sandbox,
          runStartedAt: started,
          concrete,
          lane,
          backstop: (url) => backstop(ctx.policy, p.policy, url),
          assertions: (response) => (step.assert ?? []).map((a) => evaluate(interpolate(a, resolve) as AssertionSpec, response)),
          capture: (response) => captureAll(step, response, out),
          ...(ctx.progress === undefined ? {} : { progress: (line: string) => ctx.progress!.stepUpdate(step.id, line) }),
        });
        result.verdict = result.assertions.every((a) => a.pass) ? 'pass' : 'fail';
      } catch (err) {
        if (!(err instanceof ValidateError)) throw err;
        result.verdict = 'error';
        result.error = { code: err.code, message: err.message };
        if (err.code === 'LANEWAY_ERR_RUN_ABORTED') failedStep ??= step.id;
      }
      result.durationMs = Math.round((performance.now() - t0) * 100) / 100;
      outputs.set(step.id, out);
      ctx.progress?.stepFinished(result);
      if (result.verdict !== 'pass') failedStep ??= step.id;
    }
  } finally {
    await dispatcher.close();
  }

  const count = (v: StepVerdict): number => results.filter((r) => r.verdict === v).length;
  return {
    plan: { name: plan.name, version: plan.version },
    sandbox: sandbox === null ? null : { name: sandbox.name, routingKey: sandbox.routingKey },
    params,
    policy: ctx.policy?.source ?? null,
    verdict: results.every((r) => r.verdict === 'pass') ? 'pass' : 'fail',
    startedAt: new Date(started).toISOString(),
    durationMs: Math.round(performance.now() - startedAt),
    summary: { steps: results.length, passed: count('pass'), failed: count('fail'), errored: count('error'), skipped: count('skipped') },
    steps: results,
  };
}

/** prepare + execute. */
export async function runPlan(plan: Plan, given: Readonly<Record<string, unknown>>, ctx: RunContext): Promise<RunResult> {
  return execute(await prepare(plan, given, ctx), ctx);
}

/** The origin of a URL cannot depend on step outputs (validation), but the concrete URL is checked again: cheap, and it holds if that rule ever loosens. */
function backstop(policy: Policy | null, step: PolicyStep, url: string): void {
  if (policy === null) return;
  const violations = checkPolicy(policy, [{ ...step, url }]).filter((v) => v.rule === 'hosts');
  if (violations.length > 0) refuse(policy, violations);
}
