// Every error the control plane shows a client: one table, stable codes, an HTTP status each.
import { LanewayError, type ErrorSpec } from '../proxy/errors.js';

/**
 * The control plane's error table. Codes are part of the public contract (control-plane README
 * "Errors"); never reuse or rename one. A test checks they are unique, disjoint from the sidecar's
 * and documented.
 */
export const CONTROL_PLANE_ERRORS = Object.freeze({
  LANEWAY_ERR_INVALID_FIELD: { status: 400, message: 'a field of the request is invalid' },
  LANEWAY_ERR_INVALID_BODY: { status: 400, message: 'the request body is not valid JSON' },
  LANEWAY_ERR_UNAUTHENTICATED: { status: 401, message: 'a valid bearer token is required' },
  LANEWAY_ERR_FORBIDDEN: { status: 403, message: 'the token does not allow this operation' },
  LANEWAY_ERR_TARGET_NOT_ALLOWED: { status: 403, message: 'the fork target is not allowed by --allow-targets' },
  LANEWAY_ERR_SANDBOX_NOT_FOUND: { status: 404, message: 'no sandbox with that name' },
  LANEWAY_ERR_ROUTE_NOT_FOUND: { status: 404, message: 'no such endpoint' },
  LANEWAY_ERR_KEY_CONFLICT: { status: 409, message: 'the routing key belongs to another sandbox' },
  LANEWAY_ERR_WORKLOAD_CONFLICT: { status: 409, message: 'the sandbox forks the same workload twice' },
  LANEWAY_ERR_BODY_TOO_LARGE: { status: 413, message: 'the request body is too large' },
  LANEWAY_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'the request body must be application/json' },
  LANEWAY_ERR_TOO_MANY_WATCHERS: { status: 503, message: 'the watcher limit is reached; retry later' },
  LANEWAY_ERR_SHUTTING_DOWN: { status: 503, message: 'the control plane is shutting down' },
  LANEWAY_ERR_INTERNAL: { status: 500, message: 'internal error (a server fault, not the request)' },
} as const satisfies Record<string, ErrorSpec>);

export type ControlPlaneErrorCode = keyof typeof CONTROL_PLANE_ERRORS;

/** What a client receives: `{"error":{"code","message","field"?}}`. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string };
}

/** An error a client caused (or a server fault with code INTERNAL); `field` names the offending input. */
export class ControlPlaneError extends LanewayError {
  readonly field: string | undefined;
  constructor(code: ControlPlaneErrorCode, message?: string, field?: string) {
    const spec = CONTROL_PLANE_ERRORS[code];
    super(code, spec.status, message ?? spec.message);
    this.name = 'ControlPlaneError';
    this.field = field;
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.field === undefined ? {} : { field: this.field }) } };
  }
}

/** Shorthand for the most common error: 400 naming the field. */
export function invalidField(field: string, problem: string): ControlPlaneError {
  return new ControlPlaneError('LANEWAY_ERR_INVALID_FIELD', `${field}: ${problem}`, field);
}

/** The JSON Schema of an error body with these codes (and the plans API's optional `rule`): one shape for every API. */
export function errorBodySchema(codes: readonly string[], fieldExample: string, withRule = false) {
  return {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', enum: codes },
          message: { type: 'string' },
          field: { type: 'string', description: `the offending input, e.g. ${fieldExample}` },
          ...(withRule ? { rule: { type: 'string', description: 'the policy rule broken, e.g. load.maxRate' } } : {}),
        },
      },
    },
  } as const;
}

/** The error body of the sandbox and workload routes (and so of the OpenAPI document). */
export const ERROR_SCHEMA = errorBodySchema(Object.keys(CONTROL_PLANE_ERRORS), 'spec.forks[0].targets.8080');
