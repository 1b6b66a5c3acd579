// Runs a plan: params and sandbox resolved, policy checked before any step, then the steps one at a time into a structured result.
import { JSONPath } from 'jsonpath-plus';
import { Agent } from 'undici';
import { parseDurationMs } from '../cli/flags.js';
import { ControlPlaneError } from '../control-plane/errors.js';
import { evaluate, type AssertionResult, type AssertionSpec, type ResponseView } from './assertions.js';
import { describeDifference, DIFF_ASSERTION, diffBodies, differencesCount, type Difference } from './actions/compare.js';
import { send, type Exchange, type PreparedRequest } from './actions/http.js';
import { DEFAULT_BOUNDS, judge, percent, runSide, type LoadSide, type PreparedLoad } from './actions/load.js';
import { waitReady, type Sandboxes, type SandboxView } from './actions/wait.js';
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

/** A request whose url, headers and body may still hold `${{ steps.* }}` references. */
type PendingRequest = PreparedRequest;

type PreparedStep = { readonly step: Step; readonly path: string; readonly policy: PolicyStep } & (
  | { readonly action: 'http'; readonly request: PendingRequest; readonly target: 'sandbox' | 'baseline' }
  | { readonly action: 'compare'; readonly request: PendingRequest; readonly ignore: readonly string[] }
  | { readonly action: 'load'; readonly load: PreparedLoad }
  | { readonly action: 'wait'; readonly timeoutMs: number }
);

export interface Prepared {
  readonly plan: Plan;
  readonly params: Readonly<Record<string, ParamValue>>;
  readonly sandbox: SandboxView | null;
  readonly steps: readonly PreparedStep[];
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_WAIT_TIMEOUT_MS = 60_000;
export const DEFAULT_LOAD_CONNECTIONS = 4;

function paramProblem(at: string, problem: string): ValidateError {
  return new ValidateError('LANEWAY_ERR_PARAM_INVALID', `${at}: ${problem}`, at);
}

function toMs(value: unknown, at: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number' && value > 0) return value;
  if (typeof value === 'string') {
    try {
      return parseDurationMs(at, value);
    } catch {
      // reported below
    }
  }
  throw paramProblem(at, `${JSON.stringify(value)} is not a duration (500ms, 5s) or a positive number of milliseconds`);
}

/** After parameters, the URL must be absolute http(s): a parameter like base=localhost:8080 is caught here, not as a failed step. */
function checkUrl(url: string, at: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url.replace(/\$\{\{[^{}]*\}\}/g, 'x'));
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw paramProblem(at, `'${url}' is not an absolute http:// or https:// URL once parameters are substituted`);
  }
}

function toCount(value: unknown, at: string, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return value;
  throw paramProblem(at, `${JSON.stringify(value)} is not a positive integer`);
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
  const capMs = (ms: number): number => (ctx.policy?.maxTimeoutMs == null ? ms : Math.min(ms, ctx.policy.maxTimeoutMs));

  const steps = plan.steps.map((step, i): PreparedStep => {
    const path = `steps[${i}]`;
    const action = actionOf(step);
    const raw = interpolate(step[action], early) as Record<string, unknown>;
    const at = `${path}.${action}`;
    if (action === 'wait') {
      const timeoutMs = toMs(raw.timeout, `${at}.timeout`, capMs(DEFAULT_WAIT_TIMEOUT_MS));
      return { step, path, action, timeoutMs, policy: { path, action, timeoutMs } };
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries((raw.headers as Record<string, unknown> | undefined) ?? {})) {
      headers[name] = typeof value === 'string' ? value : JSON.stringify(value);
    }
    const request: PendingRequest = {
      url: String(raw.url),
      method: typeof raw.method === 'string' ? raw.method : 'GET',
      headers,
      ...(raw.body === undefined ? {} : { body: raw.body }),
      timeoutMs: toMs(raw.timeout, `${at}.timeout`, capMs(DEFAULT_REQUEST_TIMEOUT_MS)),
    };
    checkUrl(request.url, `${at}.url`);
    const base: PolicyStep = { path, action, method: request.method, url: request.url, timeoutMs: request.timeoutMs };
    if (action === 'http') return { step, path, action, request, target: raw.target === 'baseline' ? 'baseline' : 'sandbox', policy: base };
    if (action === 'compare') return { step, path, action, request, ignore: (raw.ignore as string[] | undefined) ?? [], policy: base };
    const requests = toCount(raw.requests, `${at}.requests`);
    const rate = toCount(raw.rate, `${at}.rate`);
    const connections = toCount(raw.connections, `${at}.connections`, Math.min(DEFAULT_LOAD_CONNECTIONS, requests));
    const bounds = { ...DEFAULT_BOUNDS, ...((raw.bounds as Record<string, unknown> | undefined) ?? {}) } as Record<string, string | number>;
    const load: PreparedLoad = {
      ...request,
      requests,
      rate,
      connections,
      bounds: {
        percentile: bounds.percentile as PreparedLoad['bounds']['percentile'],
        maxIncrease: percent(String(bounds.maxIncrease)),
        graceMs: toMs(bounds.grace, `${at}.bounds.grace`, 0),
        maxErrorRate: percent(String(bounds.maxErrorRate)),
      },
    };
    return { step, path, action, load, policy: { ...base, load: { requests, rate, connections } } };
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
  const concrete = (req: PendingRequest): PreparedRequest => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      const v = interpolate(value, resolve);
      headers[name] = typeof v === 'string' ? v : JSON.stringify(v);
    }
    const url = String(interpolate(req.url, resolve));
    return { ...req, url, headers, ...(req.body === undefined ? {} : { body: interpolate(req.body, resolve) }) };
  };
  const checkAssertions = (step: Step, response: ResponseView): AssertionResult[] =>
    (step.assert ?? []).map((a) => evaluate(interpolate(a, resolve) as AssertionSpec, response));
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
      const result: StepResult = { id: p.step.id, action: p.action, ...(p.step.description ? { description: p.step.description } : {}), verdict: 'pass', assertions: [] };
      results.push(result);
      if (failedStep !== undefined && plan.continueOnFailure !== true) {
        result.verdict = 'skipped';
        result.reason = `step ${failedStep} did not pass (set continueOnFailure: true to run every step)`;
        continue;
      }
      result.startedAt = new Date().toISOString();
      const t0 = performance.now();
      const out: Record<string, unknown> = {};
      try {
        switch (p.action) {
          case 'http': {
            const req = concrete(p.request);
            result.inputs = { target: p.target, ...req };
            backstop(ctx.policy, p.policy, req.url);
            const exchange = await send(req, p.target === 'sandbox' ? lane() : null, dispatcher, ctx.signal);
            result.exchanges = { [p.target]: exchange };
            out.status = exchange.response.status;
            out.durationMs = exchange.response.durationMs;
            result.outputs = out;
            result.assertions = checkAssertions(p.step, exchange.response);
            captureAll(p.step, exchange.response, out);
            break;
          }
          case 'compare': {
            const req = concrete(p.request);
            result.inputs = { ...req, ignore: p.ignore };
            backstop(ctx.policy, p.policy, req.url);
            // Baseline first, then the sandbox, never concurrently: the two answers should differ by the change only.
            const baseline = await send(req, null, dispatcher, ctx.signal);
            const forked = await send(req, lane(), dispatcher, ctx.signal);
            result.exchanges = { baseline, sandbox: forked };
            const diffs: Difference[] = [];
            if (baseline.response.status !== forked.response.status) {
              diffs.push({ op: 'replace', path: 'status', pointer: 'status', baseline: baseline.response.status, sandbox: forked.response.status });
            }
            const body = diffBodies(baseline.response.body, forked.response.body, p.ignore);
            diffs.push(...body.differences);
            result.diffs = diffs;
            result.ignoredDiffs = body.ignored;
            out.status = forked.response.status;
            out.baselineStatus = baseline.response.status;
            out.differences = diffs.length;
            out.durationMs = Math.round((baseline.response.durationMs + forked.response.durationMs) * 100) / 100;
            result.outputs = out;
            result.assertions = [
              {
                assertion: DIFF_ASSERTION,
                pass: diffs.length === 0,
                expected: 0,
                actual: diffs.length,
                message: diffs.length === 0 ? 'ok' : `${differencesCount(diffs.length)}: ${diffs.map(describeDifference).join('; ')}`,
              },
              ...checkAssertions(p.step, forked.response),
            ];
            captureAll(p.step, forked.response, out);
            break;
          }
          case 'load': {
            const req = concrete(p.load);
            const load: PreparedLoad = { ...p.load, ...req };
            result.inputs = { url: load.url, method: load.method, headers: load.headers, ...(load.body === undefined ? {} : { body: load.body }), requests: load.requests, rate: load.rate, connections: load.connections, timeoutMs: load.timeoutMs, bounds: load.bounds };
            backstop(ctx.policy, p.policy, req.url);
            const key = lane();
            const base = await runSide(load, null, ctx.signal);
            result.load = { baseline: base };
            const forked = await runSide(load, key, ctx.signal);
            result.load = { baseline: base, sandbox: forked };
            result.assertions = judge(load, base, forked);
            out.durationMs = base.durationMs + forked.durationMs;
            result.outputs = out;
            break;
          }
          case 'wait': {
            result.inputs = { sandbox: sandbox?.name ?? null, timeoutMs: p.timeoutMs };
            if (sandbox === null) throw new ValidateError('LANEWAY_ERR_SANDBOX_REQUIRED');
            const view = await waitReady(ctx.sandboxes, sandbox.name, p.timeoutMs, ctx.signal);
            out.routingKey = view.routingKey;
            out.phase = view.phase;
            out.durationMs = view.waitedMs;
            result.outputs = out;
            break;
          }
        }
        result.verdict = result.assertions.every((a) => a.pass) ? 'pass' : 'fail';
      } catch (err) {
        if (!(err instanceof ValidateError)) throw err;
        result.verdict = 'error';
        result.error = { code: err.code, message: err.message };
        if (err.code === 'LANEWAY_ERR_RUN_ABORTED') failedStep ??= p.step.id;
      }
      result.durationMs = Math.round((performance.now() - t0) * 100) / 100;
      outputs.set(p.step.id, out);
      if (result.verdict !== 'pass') failedStep ??= p.step.id;
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
