// Every error the control plane's API shows a client: one table, stable codes, an HTTP status each (the API's wire contract, shared by its server and its clients).
import { errorBodySchema, LanewayError, type ErrorBody, type ErrorSpec } from '../core/errors.js';

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
  LANEWAY_ERR_STORE_CONTENDED: { status: 503, message: 'other writes kept changing the store under this one; retry' },
  LANEWAY_ERR_STORE_UNAVAILABLE: { status: 503, message: 'the store (etcd) did not answer within the request timeout (no quorum, or no member reachable); the write happened whole or not at all: re-read, or retry' },
  LANEWAY_ERR_NOT_SUPPORTED_ON_STORE: { status: 501, message: 'this endpoint is not available on the configured store' },
  LANEWAY_ERR_LANES_OFF: { status: 400, message: 'this control plane has no lane relay (--lane-listen); local forks need one' },
  LANEWAY_ERR_LANE_TAKEN: { status: 409, message: 'another laptop holds this sandbox\'s lane' },
  LANEWAY_ERR_LANE_NOT_LOCAL: { status: 404, message: 'the sandbox has no local fork for this workload and port' },
  LANEWAY_ERR_LANE_DISCONNECTED: { status: 502, message: 'the local fork is not connected (laneway connect is not running or lost its connection)' },
  LANEWAY_ERR_LANE_BUSY: { status: 503, message: 'the local lane has as many requests in flight as it carries' },
  LANEWAY_ERR_LANE_TIMEOUT: { status: 504, message: 'the local fork did not answer in time' },
  LANEWAY_ERR_PROBES_BUSY: { status: 503, message: 'as many propagation probes are active as the control plane runs at once; retry in a few seconds' },
  LANEWAY_ERR_PROBE_NOT_FOUND: { status: 404, message: 'no probe with that id (probes are kept 10 minutes)' },
  LANEWAY_ERR_LOCAL_UNAVAILABLE: { status: 502, message: 'the local service refused or could not be reached from laneway connect' },
  LANEWAY_ERR_INTERNAL: { status: 500, message: 'internal error (a server fault, not the request)' },
} as const satisfies Record<string, ErrorSpec>);

export type ControlPlaneErrorCode = keyof typeof CONTROL_PLANE_ERRORS;

export type { ErrorBody };

/** An error a client caused (or a server fault with code INTERNAL); `field` names the offending input. */
export class ControlPlaneError extends LanewayError {
  constructor(code: ControlPlaneErrorCode, message?: string, field?: string) {
    const spec = CONTROL_PLANE_ERRORS[code];
    super(code, spec.status, message ?? spec.message, field);
    this.name = 'ControlPlaneError';
  }
}

/** Shorthand for the most common error: 400 naming the field. */
export function invalidField(field: string, problem: string): ControlPlaneError {
  return new ControlPlaneError('LANEWAY_ERR_INVALID_FIELD', `${field}: ${problem}`, field);
}

/** The error body of the sandbox and workload routes (and so of the OpenAPI document). */
export const ERROR_SCHEMA = errorBodySchema(Object.keys(CONTROL_PLANE_ERRORS), 'spec.forks[0].targets.8080');
