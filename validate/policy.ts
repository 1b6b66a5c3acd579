// The platform policy: which actions a plan may use and within which limits, checked before any step runs, naming the rule broken.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { compileAllowTargets, type TargetPolicy } from '../model/allow-targets.js';
import { createAjv, describeAjvError } from '../core/ajv.js';
import { ValidateError } from './errors.js';
import { ACTIONS, actionModule, type ActionName } from './actions/index.js';
import { METHODS } from './actions/request.js';
import { parseDuration } from '../core/units.js';

/** The policy file as written (YAML or JSON). Every field is optional: absent = no limit. */
export interface PolicyFile {
  readonly actions?: readonly ActionName[];
  readonly hosts?: readonly string[];
  readonly methods?: readonly string[];
  readonly maxSteps?: number;
  readonly maxRequests?: number;
  readonly maxTimeout?: string | number;
  readonly load?: {
    readonly maxRequests?: number;
    readonly maxRate?: number;
    readonly maxDuration?: string | number;
    readonly maxConnections?: number;
  };
}

/** The compiled policy: patterns compiled and durations in milliseconds, once. */
export interface Policy {
  readonly source: string;
  readonly actions: ReadonlySet<ActionName> | null;
  readonly hosts: TargetPolicy | null;
  readonly hostPatterns: readonly string[];
  readonly methods: ReadonlySet<string> | null;
  readonly maxSteps: number | null;
  readonly maxRequests: number | null;
  readonly maxTimeoutMs: number | null;
  readonly load: {
    readonly maxRequests: number | null;
    readonly maxRate: number | null;
    readonly maxDurationMs: number | null;
    readonly maxConnections: number | null;
  };
}

/** What the policy looks at in one step, after parameters are substituted. */
export interface PolicyStep {
  /** `steps[2]` */
  readonly path: string;
  readonly action: ActionName;
  readonly method?: string;
  /** the URL; `${{ steps.* }}` may remain in its path, never in its origin */
  readonly url?: string;
  readonly timeoutMs: number;
  readonly load?: { readonly requests: number; readonly rate: number; readonly connections: number };
}

export interface Violation {
  /** the policy rule broken, e.g. `load.maxRate` */
  readonly rule: string;
  /** the plan field that breaks it, e.g. `steps[3].load.rate` */
  readonly field: string;
  readonly message: string;
}

const COUNT = { type: 'integer', minimum: 1, maximum: 100_000_000 } as const;
const DURATION = { type: ['string', 'number'] } as const;
const POLICY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    actions: { type: 'array', uniqueItems: true, items: { enum: ACTIONS } },
    hosts: { type: 'array', maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 300 } },
    methods: { type: 'array', uniqueItems: true, items: { enum: METHODS } },
    maxSteps: COUNT,
    maxRequests: COUNT,
    maxTimeout: DURATION,
    load: {
      type: 'object',
      additionalProperties: false,
      properties: { maxRequests: COUNT, maxRate: COUNT, maxDuration: DURATION, maxConnections: COUNT },
    },
  },
} as const;

const validateShape = createAjv().compile(POLICY_SCHEMA);

function policyError(source: string, path: string, problem: string): ValidateError {
  return new ValidateError('LANEWAY_ERR_POLICY_INVALID', `${source}: ${path}: ${problem}`, path);
}

function durationMs(source: string, path: string, value: string | number | undefined): number | null {
  if (value === undefined) return null;
  if (typeof value === 'number') return value;
  const ms = parseDuration(value);
  if (ms === undefined) throw policyError(source, path, `expected a duration like 30s or 2m, got '${value}'`);
  return ms;
}

/** Validates and compiles a policy object; throws POLICY_INVALID naming the path. */
export function compilePolicy(value: unknown, source = 'policy'): Policy {
  if (value === null || value === undefined) value = {}; // an empty file: no limits
  if (!validateShape(value)) {
    const { path, problem } = describeAjvError(validateShape.errors![0]!);
    throw policyError(source, path, problem);
  }
  const file = value as PolicyFile;
  // Compiled one pattern at a time so a bad one is named by its index, with the control plane's own
  // --allow-targets syntax (host globs and CIDRs): one language for "where may traffic go".
  file.hosts?.forEach((pattern, i) => {
    try {
      compileAllowTargets([pattern]);
    } catch {
      throw policyError(source, `hosts[${i}]`, `'${pattern}' is neither a host glob (*.default.svc) nor an IP or CIDR (10.0.0.0/8)`);
    }
  });
  return Object.freeze({
    source,
    actions: file.actions === undefined ? null : new Set(file.actions),
    hosts: file.hosts === undefined ? null : (compileAllowTargets(file.hosts) ?? (() => false)),
    hostPatterns: file.hosts ?? [],
    methods: file.methods === undefined ? null : new Set(file.methods),
    maxSteps: file.maxSteps ?? null,
    maxRequests: file.maxRequests ?? null,
    maxTimeoutMs: durationMs(source, 'maxTimeout', file.maxTimeout),
    load: Object.freeze({
      maxRequests: file.load?.maxRequests ?? null,
      maxRate: file.load?.maxRate ?? null,
      maxDurationMs: durationMs(source, 'load.maxDuration', file.load?.maxDuration),
      maxConnections: file.load?.maxConnections ?? null,
    }),
  });
}

/** Reads and compiles a policy file (YAML or JSON). */
export function loadPolicy(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidateError('LANEWAY_ERR_POLICY_INVALID', `cannot read policy ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) throw policyError(path, '(document)', doc.errors[0]!.message.split('\n')[0] ?? 'invalid YAML');
  return compilePolicy(doc.toJS(), path);
}

/** Requests a step sends: what `maxRequests` counts. */
export function requestsOf(step: PolicyStep): number {
  return actionModule(step.action).requests(step);
}

/** The host a URL names; `${{ steps.* }}` left in its path does not change it. */
function hostOf(url: string): string | null {
  try {
    return new URL(url.replace(/\$\{\{[^{}]*\}\}/g, 'x')).hostname;
  } catch {
    return null;
  }
}

/**
 * Every rule the steps break, in step order (empty = allowed). Pure: the runner calls it after
 * parameters are substituted and before the first step, and again per request as a backstop.
 */
export function checkPolicy(policy: Policy, steps: readonly PolicyStep[]): Violation[] {
  const violations: Violation[] = [];
  if (policy.maxSteps !== null && steps.length > policy.maxSteps) {
    violations.push({ rule: 'maxSteps', field: 'steps', message: `the plan has ${steps.length} steps; the policy allows at most ${policy.maxSteps} (maxSteps)` });
  }
  let total = 0;
  for (const step of steps) {
    const at = `${step.path}.${step.action}`;
    if (policy.actions !== null && !policy.actions.has(step.action)) {
      violations.push({ rule: 'actions', field: at, message: `${at}: the ${step.action} action is not allowed (actions: ${[...policy.actions].join(', ') || 'none'})` });
    }
    if (step.method !== undefined && policy.methods !== null && !policy.methods.has(step.method)) {
      violations.push({ rule: 'methods', field: `${at}.method`, message: `${at}.method: ${step.method} is not allowed (methods: ${[...policy.methods].join(', ')})` });
    }
    if (step.url !== undefined && policy.hosts !== null) {
      const host = hostOf(step.url);
      if (host === null || !policy.hosts(host)) {
        violations.push({ rule: 'hosts', field: `${at}.url`, message: `${at}.url: host ${host ?? step.url} is not allowed (hosts: ${policy.hostPatterns.join(', ') || 'none'})` });
      }
    }
    if (policy.maxTimeoutMs !== null && step.timeoutMs > policy.maxTimeoutMs) {
      violations.push({ rule: 'maxTimeout', field: `${at}.timeout`, message: `${at}.timeout: ${step.timeoutMs} ms exceeds maxTimeout ${policy.maxTimeoutMs} ms` });
    }
    if (step.load !== undefined) {
      const { requests, rate, connections } = step.load;
      const limits = policy.load;
      if (limits.maxRequests !== null && requests > limits.maxRequests) {
        violations.push({ rule: 'load.maxRequests', field: `${at}.requests`, message: `${at}.requests: ${requests} exceeds load.maxRequests ${limits.maxRequests}` });
      }
      if (limits.maxRate !== null && rate > limits.maxRate) {
        violations.push({ rule: 'load.maxRate', field: `${at}.rate`, message: `${at}.rate: ${rate}/s exceeds load.maxRate ${limits.maxRate}/s` });
      }
      if (limits.maxConnections !== null && connections > limits.maxConnections) {
        violations.push({ rule: 'load.maxConnections', field: `${at}.connections`, message: `${at}.connections: ${connections} exceeds load.maxConnections ${limits.maxConnections}` });
      }
      // Each side (baseline, sandbox) lasts requests / rate seconds at the given rate.
      const durationMs = Math.ceil((requests / rate) * 1000);
      if (limits.maxDurationMs !== null && durationMs > limits.maxDurationMs) {
        violations.push({ rule: 'load.maxDuration', field: at, message: `${at}: ${requests} requests at ${rate}/s take ${durationMs} ms per side, more than load.maxDuration ${limits.maxDurationMs} ms` });
      }
    }
    total += requestsOf(step);
  }
  if (policy.maxRequests !== null && total > policy.maxRequests) {
    violations.push({ rule: 'maxRequests', field: 'steps', message: `the plan sends up to ${total} requests; the policy allows at most ${policy.maxRequests} (maxRequests)` });
  }
  return violations;
}

/** Throws POLICY_VIOLATION for the violations (all listed, the first one's rule and field attached). */
export function refuse(policy: Policy, violations: readonly Violation[]): never {
  const first = violations[0]!;
  const rest = violations.length > 1 ? `; also: ${violations.slice(1).map((v) => v.message).join('; ')}` : '';
  throw new ValidateError(
    'LANEWAY_ERR_POLICY_VIOLATION',
    `refused by policy ${policy.source}, rule ${first.rule}: ${first.message}${rest}`,
    first.field,
    first.rule,
  );
}

