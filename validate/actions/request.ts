// The request inputs http, compare and load share: their schema, their checks, and their typed form once parameters are in. No I/O.
import { planError, ValidateError } from '../errors.js';
import { hasTemplate, refsIn } from '../template.js';
import type { CheckScope, PolicyInputs, PrepareScope } from './action.js';

/** Request inputs as written; strings may hold `${{ }}` references. */
export interface RequestInput {
  readonly url: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly timeout?: string | number;
}

/** A request with parameters substituted (`${{ steps.* }}` may remain until the step runs); what goes on the wire once they are in too. */
export interface PreparedRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly timeoutMs: number;
}

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

// Numbers and durations also accept a string, which the checks restrict to a `${{ params.x }}`
// reference or a duration: what the policy checks must be known before a step runs.
export const NUMBERISH = { type: ['number', 'string'] } as const;
export const DURATION = { type: ['string', 'number'] } as const;
/** RFC 9110 §5.6.2 token: what a header name may be */
export const TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
const HEADERS = {
  type: 'object',
  maxProperties: 64,
  propertyNames: { pattern: TOKEN, maxLength: 256 },
  additionalProperties: { type: 'string', maxLength: 8192 },
} as const;
/** The schema properties of a request, for an action's schema to spread. */
export const REQUEST_PROPERTIES = {
  url: { type: 'string', minLength: 1, maxLength: 4096 },
  method: { enum: METHODS },
  headers: HEADERS,
  body: {},
  timeout: DURATION,
} as const;

/** The scheme-host-port part of a plan URL: `http://h:1` of `http://h:1/a`, or a leading reference and what follows it up to the path. */
export function originOf(url: string): string {
  const lead = /^\$\{\{[^{}]*\}\}[^/?#]*/.exec(url);
  if (lead !== null) return lead[0];
  return /^[^:/]*:\/\/[^/?#]*/.exec(url)?.[0] ?? url;
}

/** The checks of a request's fields; `at` is `steps[i].<action>`. */
export function checkRequest(input: RequestInput, at: string, scope: CheckScope): void {
  scope.refs(input.url, `${at}.url`, true);
  // The policy checks scheme, host and port before any step runs, so they may use parameters but
  // never another step's output.
  const origin = originOf(input.url);
  const originRefs = refsIn(origin);
  if (Array.isArray(originRefs) && originRefs.some((r) => r.kind === 'steps')) {
    throw planError(`${at}.url`, 'the scheme, host and port must be known before the plan runs: they may use ${{ params }} but not ${{ steps }}');
  }
  if (!hasTemplate(origin) && !/^https?:\/\/[^/?#]+/i.test(input.url)) {
    throw planError(`${at}.url`, `must be an absolute http:// or https:// URL, got '${input.url}'`);
  }
  for (const [name, v] of Object.entries(input.headers ?? {})) scope.refs(v, `${at}.headers.${name}`, true);
  if (input.body !== undefined) scope.walk(input.body, `${at}.body`);
  if (input.timeout !== undefined) scope.duration(input.timeout, `${at}.timeout`);
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
    throw new ValidateError('LANEWAY_ERR_PARAM_INVALID', `${at}.url: '${url}' is not an absolute http:// or https:// URL once parameters are substituted`, `${at}.url`);
  }
}

/** The typed request of a step's inputs, and what the policy sees of it. */
export function prepareRequest(raw: Readonly<Record<string, unknown>>, at: string, scope: PrepareScope): { request: PreparedRequest; policy: PolicyInputs } {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries((raw.headers as Record<string, unknown> | undefined) ?? {})) {
    headers[name] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  const request: PreparedRequest = {
    url: String(raw.url),
    method: typeof raw.method === 'string' ? raw.method : 'GET',
    headers,
    ...(raw.body === undefined ? {} : { body: raw.body }),
    timeoutMs: scope.ms(raw.timeout, `${at}.timeout`, scope.capMs(DEFAULT_REQUEST_TIMEOUT_MS)),
  };
  checkUrl(request.url, at);
  return { request, policy: { method: request.method, url: request.url, timeoutMs: request.timeoutMs } };
}
