// Assertions on a step's response: status, header, JSONPath equals/matches/exists, JSON Schema (ajv), latency bound. No I/O.
import { isDeepStrictEqual } from 'node:util';
import { JSONPath } from 'jsonpath-plus';
import { createAjv, describeAjvError } from '../core/ajv.js';
import { parseDuration } from '../core/units.js';
import { planError } from './errors.js';

/** One assertion as written in a plan: exactly one subject key, and for header/jsonpath exactly one operator. */
export interface AssertionSpec {
  readonly status?: number | readonly number[];
  readonly header?: string;
  readonly jsonpath?: string;
  readonly schema?: Record<string, unknown>;
  readonly latency?: string | number;
  readonly equals?: unknown;
  readonly matches?: string;
  readonly exists?: boolean;
}

/** What an assertion sees: a response as the http and compare actions record it. */
export interface ResponseView {
  readonly status: number;
  /** lowercased names; repeated headers joined with ", " (RFC 9110 §5.3) */
  readonly headers: Readonly<Record<string, string>>;
  /** parsed JSON when the response was JSON, the text otherwise */
  readonly body: unknown;
  readonly json: boolean;
  readonly durationMs: number;
}

export interface AssertionResult {
  /** e.g. `status == 200`, `jsonpath $.total exists` */
  readonly assertion: string;
  readonly pass: boolean;
  readonly expected: unknown;
  readonly actual: unknown;
  /** why it failed, in words an agent can act on; "ok" when it passed */
  readonly message: string;
}

const SUBJECTS = ['status', 'header', 'jsonpath', 'schema', 'latency'] as const;
const OPERATORS = ['equals', 'matches', 'exists'] as const;

/** The JSON Schema of one assertion (shape only; `checkAssertion` checks meaning). */
export const ASSERTION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    status: {
      anyOf: [
        { type: 'integer', minimum: 100, maximum: 599 },
        { type: 'array', minItems: 1, maxItems: 20, items: { type: 'integer', minimum: 100, maximum: 599 } },
      ],
    },
    header: { type: 'string', minLength: 1, maxLength: 256, pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
    jsonpath: { type: 'string', minLength: 1, maxLength: 1024, pattern: '^\\$' },
    schema: { type: 'object' },
    latency: { type: ['string', 'number'] },
    equals: {},
    matches: { type: 'string', maxLength: 1024 },
    exists: { type: 'boolean' },
  },
} as const;

// One compiler for the whole process: Ajv caches compiled schemas by content, so the same plan run
// again does not recompile.
const ajv = createAjv({ forUserSchemas: true });

/** Checks what the shape schema cannot: one subject, the operator rules, regexes and schemas that compile. */
export function checkAssertion(spec: AssertionSpec, path: string): void {
  const subjects = SUBJECTS.filter((s) => spec[s] !== undefined);
  if (subjects.length !== 1) throw planError(path, `needs exactly one of ${SUBJECTS.join(', ')} (got ${subjects.length === 0 ? 'none' : subjects.join(', ')})`);
  const subject = subjects[0] as (typeof SUBJECTS)[number];
  const operators = OPERATORS.filter((o) => spec[o] !== undefined);
  if (subject === 'header' || subject === 'jsonpath') {
    if (operators.length !== 1) throw planError(path, `${subject} needs exactly one of equals, matches, exists`);
  } else if (operators.length > 0) {
    throw planError(`${path}.${operators[0]}`, `applies to header and jsonpath assertions only`);
  }
  if (spec.matches !== undefined) {
    try {
      new RegExp(spec.matches);
    } catch (err) {
      throw planError(`${path}.matches`, `not a valid regular expression: ${(err as Error).message}`);
    }
  }
  if (spec.jsonpath !== undefined) {
    try {
      JSONPath({ path: spec.jsonpath, json: {}, wrap: true, eval: 'safe' });
    } catch (err) {
      throw planError(`${path}.jsonpath`, `not a valid JSONPath: ${(err as Error).message}`);
    }
  }
  if (spec.schema !== undefined) {
    try {
      ajv.compile(spec.schema);
    } catch (err) {
      throw planError(`${path}.schema`, `not a valid JSON Schema: ${(err as Error).message}`);
    }
  }
  if (spec.latency !== undefined) latencyBoundMs(spec.latency, `${path}.latency`);
}

function latencyBoundMs(value: string | number, path: string): number {
  if (typeof value === 'number') {
    if (!(value > 0)) throw planError(path, 'must be a positive number of milliseconds or a duration like 500ms');
    return value;
  }
  const ms = parseDuration(value);
  if (ms === undefined) throw planError(path, `expected a duration like 250ms or 2s, got '${value}'`);
  return ms;
}

/** `$.a` with every match, or an error text when the body cannot be queried. */
function query(path: string, response: ResponseView): unknown[] | string {
  if (!response.json) return 'the response body is not JSON';
  // eval 'safe': filter expressions run in jsonpath-plus's own interpreter, never as JavaScript.
  return JSONPath({ path, json: response.body as object, wrap: true, eval: 'safe' }) as unknown[];
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

function result(assertion: string, pass: boolean, expected: unknown, actual: unknown, message: string): AssertionResult {
  return { assertion, pass, expected, actual, message: pass ? 'ok' : message };
}

/** Evaluates one assertion (already interpolated) against a response. Never throws. */
export function evaluate(spec: AssertionSpec, response: ResponseView): AssertionResult {
  if (spec.status !== undefined) {
    const allowed = typeof spec.status === 'number' ? [spec.status] : [...spec.status];
    const text = allowed.length === 1 ? `status == ${allowed[0]}` : `status in [${allowed.join(', ')}]`;
    return result(text, allowed.includes(response.status), spec.status, response.status, `expected ${text.slice(7)}, got ${response.status}`);
  }
  if (spec.latency !== undefined) {
    const bound = latencyBoundMs(spec.latency, 'latency');
    const ms = Math.round(response.durationMs * 10) / 10;
    return result(`latency <= ${bound} ms`, response.durationMs <= bound, bound, ms, `took ${ms} ms, more than the ${bound} ms bound`);
  }
  if (spec.schema !== undefined) {
    if (!response.json) return result('body matches schema', false, spec.schema, null, 'the response body is not JSON');
    const validate = ajv.compile(spec.schema);
    if (validate(response.body)) return result('body matches schema', true, spec.schema, null, 'ok');
    const first = validate.errors?.[0];
    const where = first === undefined ? { path: '$', problem: 'is invalid' } : describeAjvError(first, '$');
    return result('body matches schema', false, spec.schema, where.path, `body ${where.path === '$' ? '' : `${where.path} `}${where.problem}`.replace(/ +/g, ' '));
  }
  if (spec.header !== undefined) {
    const name = spec.header.toLowerCase();
    const actual = response.headers[name];
    if (spec.exists !== undefined) {
      const present = actual !== undefined;
      return result(`header ${name} ${spec.exists ? 'exists' : 'is absent'}`, present === spec.exists, spec.exists, actual ?? null,
        spec.exists ? `the response has no ${name} header` : `the response has a ${name} header (${show(actual)})`);
    }
    if (actual === undefined) {
      const text = spec.matches !== undefined ? `header ${name} matches /${spec.matches}/` : `header ${name} == ${show(spec.equals)}`;
      return result(text, false, spec.matches ?? spec.equals, null, `the response has no ${name} header`);
    }
    if (spec.matches !== undefined) {
      return result(`header ${name} matches /${spec.matches}/`, new RegExp(spec.matches).test(actual), spec.matches, actual, `${name} is ${show(actual)}, which does not match /${spec.matches}/`);
    }
    return result(`header ${name} == ${show(spec.equals)}`, actual === String(spec.equals), spec.equals, actual, `${name} is ${show(actual)}, expected ${show(spec.equals)}`);
  }
  // jsonpath
  const path = spec.jsonpath as string;
  const matches = query(path, response);
  if (spec.exists !== undefined) {
    const text = `jsonpath ${path} ${spec.exists ? 'exists' : 'does not exist'}`;
    if (typeof matches === 'string') return result(text, false, spec.exists, null, matches);
    const found = matches.length > 0;
    return result(text, found === spec.exists, spec.exists, found ? (matches.length === 1 ? matches[0] : matches) : null,
      spec.exists ? `${path} matched nothing in the response body` : `${path} is present: ${show(matches.length === 1 ? matches[0] : matches)}`);
  }
  if (spec.matches !== undefined) {
    const text = `jsonpath ${path} matches /${spec.matches}/`;
    if (typeof matches === 'string') return result(text, false, spec.matches, null, matches);
    if (matches.length === 0) return result(text, false, spec.matches, null, `${path} matched nothing in the response body`);
    const re = new RegExp(spec.matches);
    // Every match must match: `$.items[*].sku matches ^SKU-` is a statement about all items.
    const bad = matches.find((m) => !re.test(typeof m === 'string' ? m : JSON.stringify(m)));
    const actual = matches.length === 1 ? matches[0] : matches;
    return result(text, bad === undefined, spec.matches, actual, `${path} is ${show(bad)}, which does not match /${spec.matches}/`);
  }
  const text = `jsonpath ${path} == ${show(spec.equals)}`;
  if (typeof matches === 'string') return result(text, false, spec.equals, null, matches);
  if (matches.length === 0) return result(text, false, spec.equals, null, `${path} matched nothing in the response body`);
  // One match compares as the value; several compare as the list of values.
  const actual = matches.length === 1 ? matches[0] : matches;
  return result(text, isDeepStrictEqual(actual, spec.equals), spec.equals, actual, `${path} is ${show(actual)}, expected ${show(spec.equals)}`);
}
