// The plan model: YAML/JSON parsing, the schema assembled from the action modules, validation that names the path of the first error, typed params. No I/O.
import type { TrafficInput } from './actions/traffic.js';
import { JSONPath } from 'jsonpath-plus';
import { parseDocument } from 'yaml';
import { ACTION_MODULES, ACTIONS, actionModule, type ActionName } from './actions/index.js';
import type { CheckScope } from './actions/action.js';
import type { CompareInput } from './actions/compare.js';
import type { HttpInput } from './actions/http.js';
import type { LoadInput } from './actions/load.js';
import { TOKEN } from './actions/request.js';
import type { WaitInput } from './actions/wait.js';
import { createAjv, describeAjvError } from '../core/ajv.js';
import { ASSERTION_SCHEMA, checkAssertion, type AssertionSpec } from './assertions.js';
import { parseDuration } from '../core/units.js';
import { PlanInvalidError, planError, ValidateError } from './errors.js';
import { formatRef, isParamRef, NAME_RE, refsIn, STEP_ID_RE, type Ref } from './template.js';

export { ACTIONS, type ActionName } from './actions/index.js';

export type ParamType = 'string' | 'integer' | 'number' | 'boolean';
export type ParamValue = string | number | boolean;

export interface ParamSpec {
  readonly type: ParamType;
  readonly default?: ParamValue;
  readonly description?: string;
  readonly enum?: readonly ParamValue[];
}

/** A capture: a JSONPath into the body (first match), or a response header. */
export type CaptureSpec = string | { readonly header: string };

/** A step: an id and exactly one action, whose input shape its module (validate/actions/) defines. */
export interface Step {
  readonly id: string;
  readonly description?: string;
  readonly http?: HttpInput;
  readonly compare?: CompareInput;
  readonly load?: LoadInput;
  readonly wait?: WaitInput;
  readonly traffic?: TrafficInput;
  readonly capture?: Readonly<Record<string, CaptureSpec>>;
  readonly assert?: readonly AssertionSpec[];
}

export interface Plan {
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  /** for skills: when an agent should use this plan */
  readonly whenToUse?: string;
  /** run the remaining steps after a failed one (default: skip them) */
  readonly continueOnFailure?: boolean;
  readonly params?: Readonly<Record<string, ParamSpec>>;
  readonly steps: readonly Step[];
}

export function actionOf(step: Step): ActionName {
  for (const action of ACTIONS) if (step[action] !== undefined) return action;
  throw new Error(`step ${step.id} has no action`); // validatePlan guarantees one
}

export const LIMITS = Object.freeze({ maxSteps: 100, maxParams: 50, maxPlanBytes: 256 * 1024 });
const TOKEN_RE = new RegExp(TOKEN);
/** `http and compare`: the actions whose one response capture and assert read */
const RESPONSE_READERS = ACTIONS.filter((a) => ACTION_MODULES[a].readsResponse).join(' and ');

/** Each action's schema under its name: a step has exactly one (checked after the schema). */
const ACTION_SCHEMAS = Object.fromEntries(ACTIONS.map((name) => [name, ACTION_MODULES[name].schema]));

export const PLAN_SCHEMA = {
  type: 'object',
  required: ['name', 'version', 'steps'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
    version: { type: 'string', pattern: '^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$' },
    description: { type: 'string', maxLength: 1024 },
    whenToUse: { type: 'string', maxLength: 2048 },
    continueOnFailure: { type: 'boolean' },
    params: {
      type: 'object',
      maxProperties: LIMITS.maxParams,
      propertyNames: { pattern: NAME_RE.source },
      additionalProperties: {
        type: 'object',
        required: ['type'],
        additionalProperties: false,
        properties: {
          type: { enum: ['string', 'integer', 'number', 'boolean'] },
          default: { type: ['string', 'number', 'boolean'] },
          description: { type: 'string', maxLength: 1024 },
          enum: { type: 'array', minItems: 1, maxItems: 100, items: { type: ['string', 'number', 'boolean'] } },
        },
      },
    },
    steps: {
      type: 'array',
      minItems: 1,
      maxItems: LIMITS.maxSteps,
      items: {
        type: 'object',
        required: ['id'],
        additionalProperties: false,
        properties: {
          id: { type: 'string', pattern: STEP_ID_RE.source },
          description: { type: 'string', maxLength: 1024 },
          ...ACTION_SCHEMAS,
          capture: {
            type: 'object',
            maxProperties: 50,
            propertyNames: { pattern: NAME_RE.source },
            additionalProperties: { type: ['string', 'object'] },
          },
          assert: { type: 'array', maxItems: 100, items: ASSERTION_SCHEMA },
        },
      },
    },
  },
} as const;

// Every shape error at once (one per field): a plan with six mistakes should not need six runs.
const validateShape = createAjv({ allErrors: true }).compile(PLAN_SCHEMA);

/** Runs `check`; a PLAN_INVALID it throws is collected instead, so one pass reports every mistake. */
function collect(problems: ValidateError[], check: () => void): void {
  try {
    check();
  } catch (err) {
    if (err instanceof ValidateError && err.code === 'LANEWAY_ERR_PLAN_INVALID') problems.push(err);
    else throw err;
  }
}

/** The collected problems as one PLAN_INVALID error (the first one's field; `problems` lists them all). */
function rejectPlan(problems: readonly ValidateError[]): never {
  throw new PlanInvalidError(problems.map((p) => ({ path: p.field ?? '(plan)', message: p.message })));
}

/** Parses YAML (or JSON, which is YAML 1.2) and validates it; `source` names the file in messages. */
export function parsePlan(text: string, source = 'plan'): Plan {
  if (Buffer.byteLength(text) > LIMITS.maxPlanBytes) throw planError(source, `is larger than ${LIMITS.maxPlanBytes} bytes`);
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const at = e.linePos?.[0];
    // The parser appends ` at line L, column C:` and a code excerpt to its reason; the position is
    // given first instead, and the excerpt dropped, so the error stays one line.
    const reason = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    // The offending line itself, quoted (tabs and long lines kept readable), so the reader need not open the file.
    const offending = at === undefined ? undefined : text.split(/\r?\n/)[at.line - 1];
    const quoted = offending === undefined || offending.trim() === '' ? '' : ` (line ${at!.line}: ${JSON.stringify(offending.length > 120 ? `${offending.slice(0, 117)}...` : offending)})`;
    throw planError(source, `${at === undefined ? '' : `line ${at.line}, column ${at.col}: `}${reason}${quoted}`);
  }
  return validatePlan(doc.toJS());
}

/**
 * Validates a plan object; throws PLAN_INVALID listing every problem with its path
 * (`steps[2].load.rate`), the first one's path as the field. Shape errors come first and alone: the
 * checks of meaning need a well-formed plan.
 */
export function validatePlan(value: unknown): Plan {
  const problems: ValidateError[] = [];
  const seenPaths = new Set<string>();
  if (typeof value === 'object' && value !== null && typeof (value as { version?: unknown }).version === 'number') {
    problems.push(planError('version', 'must be a string; quote it (version: "1.0")'));
    seenPaths.add('version');
  }
  if (!validateShape(value)) {
    for (const error of validateShape.errors!) {
      const { path, problem } = describeAjvError(error);
      // One problem per field (a type error under anyOf would otherwise come once per branch).
      if (seenPaths.has(path)) continue;
      seenPaths.add(path);
      problems.push(planError(path, problem));
    }
  }
  if (problems.length > 0) rejectPlan(problems);
  const plan = value as unknown as Plan;
  const params = plan.params ?? {};
  for (const [name, spec] of Object.entries(params)) {
    collect(problems, () => {
      if (spec.default !== undefined && !hasType(spec.default, spec.type)) throw planError(`params.${name}.default`, `must be of type ${spec.type}`);
      spec.enum?.forEach((v, i) => {
        if (!hasType(v, spec.type)) throw planError(`params.${name}.enum[${i}]`, `must be of type ${spec.type}`);
      });
      if (spec.default !== undefined && spec.enum !== undefined && !spec.enum.includes(spec.default)) {
        throw planError(`params.${name}.default`, 'must be one of the enum values');
      }
    });
  }

  const seen = new Map<string, ActionName>();
  const captures = new Map<string, Set<string>>();
  const scope = collecting(problems, checkScope(params, seen, captures));
  plan.steps.forEach((step, i) => {
    const path = `steps[${i}]`;
    const actions = ACTIONS.filter((a) => step[a] !== undefined);
    if (actions.length !== 1) {
      problems.push(planError(path, `needs exactly one action of ${ACTIONS.join(', ')} (got ${actions.length === 0 ? 'none' : actions.join(', ')})`));
      return;
    }
    const action = actions[0]!;
    collect(problems, () => {
      if (seen.has(step.id)) throw planError(`${path}.id`, `'${step.id}' is used by an earlier step; step ids are unique`);
    });
    const module = actionModule(action);
    collect(problems, () => module.check(step[action], `${path}.${action}`, scope));

    const names = new Set<string>();
    if ((step.capture !== undefined || step.assert !== undefined) && !module.readsResponse) {
      problems.push(planError(`${path}.${step.capture !== undefined ? 'capture' : 'assert'}`, `applies to ${RESPONSE_READERS} steps, not ${action} (a load step passes or fails on its bounds)`));
    }
    for (const [name, spec] of Object.entries(step.capture ?? {})) collect(problems, () => {
      const cat = `${path}.capture.${name}`;
      if (module.outputs.includes(name)) throw planError(cat, `'${name}' is a built-in output of the step; choose another name`);
      if (typeof spec === 'string') {
        if (!spec.startsWith('$')) throw planError(cat, 'must be a JSONPath into the body ($.field) or {header: <name>}');
        try {
          JSONPath({ path: spec, json: {}, wrap: true, eval: 'safe' });
        } catch (err) {
          throw planError(cat, `not a valid JSONPath: ${(err as Error).message}`);
        }
      } else if (typeof spec !== 'object' || spec === null || Object.keys(spec).length !== 1 || typeof spec.header !== 'string' || !TOKEN_RE.test(spec.header)) {
        throw planError(cat, 'must be a JSONPath into the body ($.field) or {header: <name>}');
      }
      names.add(name);
    });
    step.assert?.forEach((a, j) => collect(problems, () => {
      checkAssertion(a, `${path}.assert[${j}]`);
      if (a.equals !== undefined) scope.walk(a.equals, `${path}.assert[${j}].equals`);
    }));
    if (!seen.has(step.id)) seen.set(step.id, action);
    captures.set(step.id, names);
  });
  if (problems.length > 0) rejectPlan(problems);
  return plan;
}


/** The scope with each check collecting its problem instead of throwing, so one field's mistake does not hide the next field's. */
function collecting(problems: ValidateError[], scope: CheckScope): CheckScope {
  return {
    refs: (text, at, allowSteps) => collect(problems, () => scope.refs(text, at, allowSteps)),
    walk: (value, at) => collect(problems, () => scope.walk(value, at)),
    count: (value, at, min) => collect(problems, () => scope.count(value, at, min)),
    duration: (value, at) => collect(problems, () => scope.duration(value, at)),
  };
}

/** The checks lent to the action modules; `seen` and `captures` grow step by step, so a reference sees only earlier steps. */
function checkScope(params: Readonly<Record<string, ParamSpec>>, seen: ReadonlyMap<string, ActionName>, captures: ReadonlyMap<string, ReadonlySet<string>>): CheckScope {
  const refs = (text: string, at: string, allowSteps: boolean): void => {
    const found = refsIn(text);
    if (typeof found === 'string') throw planError(at, found);
    for (const ref of found) checkRef(ref, at, allowSteps);
  };
  const checkRef = (ref: Ref, at: string, allowSteps: boolean): void => {
    if (ref.kind === 'params' && params[ref.name] === undefined) {
      throw planError(at, `${formatRef(ref)} names no declared parameter (declare it under params)`);
    }
    if (ref.kind !== 'steps') return;
    if (!allowSteps) throw planError(at, `${formatRef(ref)}: this field must be known before the plan runs; use a parameter`);
    const earlier = seen.get(ref.id);
    if (earlier === undefined) throw planError(at, `${formatRef(ref)} names no earlier step (steps run in order)`);
    const outputs = ACTION_MODULES[earlier].outputs;
    if (!outputs.includes(ref.field) && !captures.get(ref.id)?.has(ref.field)) {
      const known = [...outputs, ...(captures.get(ref.id) ?? [])];
      throw planError(at, `${formatRef(ref)}: step ${ref.id} has no output ${ref.field} (it has ${known.join(', ')})`);
    }
  };
  const walk = (value: unknown, at: string): void => {
    if (typeof value === 'string') refs(value, at, true);
    else if (Array.isArray(value)) value.forEach((v, j) => walk(v, `${at}[${j}]`));
    else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) walk(v, `${at}.${k}`);
  };
  return {
    refs,
    walk,
    count(value, at, min) {
      if (typeof value === 'string') {
        if (!isParamRef(value)) throw planError(at, 'must be a number or a ${{ params.<name> }} reference');
        refs(value, at, false);
      } else if (typeof value === 'number' && !(Number.isInteger(value) && value >= min)) {
        throw planError(at, `must be an integer ≥ ${min}`);
      }
    },
    duration(value, at) {
      if (typeof value === 'number') {
        if (!(value > 0)) throw planError(at, 'must be a positive number of milliseconds');
      } else if (typeof value === 'string') {
        if (isParamRef(value)) return refs(value, at, false);
        if (parseDuration(value) === undefined) throw planError(at, `expected a duration like 500ms, 5s or 2m, got '${value}'`);
      }
    },
  };
}

function hasType(value: unknown, type: ParamType): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
  }
}

/** Text from `--param k=v` (or a string sent to the API) as the parameter's type. */
function coerce(text: string, type: ParamType): ParamValue | undefined {
  switch (type) {
    case 'string':
      return text;
    case 'integer':
      return /^-?[0-9]{1,15}$/.test(text) ? Number(text) : undefined;
    case 'number': {
      const n = Number(text);
      return text.trim() !== '' && Number.isFinite(n) ? n : undefined;
    }
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : undefined;
  }
}

/**
 * The values of every parameter: given ones (strings are coerced to the declared type, so CLI
 * `--param n=3` and JSON `{"n": 3}` mean the same), then defaults. Throws PARAM_INVALID naming `params.<name>`.
 */
export function resolveParams(plan: Plan, given: Readonly<Record<string, unknown>>): Record<string, ParamValue> {
  const specs = plan.params ?? {};
  const values: Record<string, ParamValue> = {};
  for (const [name, raw] of Object.entries(given)) {
    const spec = specs[name];
    if (spec === undefined) {
      const known = Object.keys(specs);
      throw new ValidateError('LANEWAY_ERR_PARAM_INVALID', `params.${name}: plan ${plan.name} has no such parameter (${known.length === 0 ? 'it takes none' : `it takes ${known.join(', ')}`})`, `params.${name}`);
    }
    const value = typeof raw === 'string' ? coerce(raw, spec.type) : raw;
    if (value === undefined || !hasType(value, spec.type)) {
      throw new ValidateError('LANEWAY_ERR_PARAM_INVALID', `params.${name}: expected ${spec.type === 'integer' ? 'an' : 'a'} ${spec.type}, got ${JSON.stringify(raw)}`, `params.${name}`);
    }
    values[name] = value as ParamValue;
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (values[name] === undefined) {
      if (spec.default === undefined) throw new ValidateError('LANEWAY_ERR_PARAM_INVALID', `params.${name}: is required (${spec.type}${spec.description ? `: ${spec.description}` : ''})`, `params.${name}`);
      values[name] = spec.default;
    }
    if (spec.enum !== undefined && !spec.enum.includes(values[name]!)) {
      throw new ValidateError('LANEWAY_ERR_PARAM_INVALID', `params.${name}: must be one of ${spec.enum.map((v) => JSON.stringify(v)).join(', ')}`, `params.${name}`);
    }
  }
  return values;
}

/** `--param k=v` pairs as an object; `flag` names the flag in errors. */
export function parseParamPairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ValidateError('LANEWAY_ERR_PARAM_INVALID', `--param: expected name=value, got '${pair}'`, '--param');
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** JSON with object keys sorted: two plans with the same content have the same text whatever their key order or YAML style. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/** True when some step acts in the sandbox's context (everything but an http step with `target: baseline`) or reads `${{ sandbox.* }}`. */
export function needsSandbox(plan: Plan): boolean {
  return plan.steps.some((s) => {
    const action = actionOf(s);
    return actionModule(action).needsSandbox(s[action]) || usesSandboxRef(s);
  });
}

function usesSandboxRef(value: unknown): boolean {
  if (typeof value === 'string') {
    const refs = refsIn(value);
    return Array.isArray(refs) && refs.some((r) => r.kind === 'sandbox');
  }
  if (Array.isArray(value)) return value.some(usesSandboxRef);
  if (typeof value === 'object' && value !== null) return Object.values(value).some(usesSandboxRef);
  return false;
}
