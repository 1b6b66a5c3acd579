// Every error the sidecar shows a client or an operator: one table, stable codes, an HTTP status each.
import type { ErrorSpec } from '../core/errors.js';

/** The sidecar's error table. Codes are part of the public contract (README "Errors"); never reuse or rename one. */
export const SIDECAR_ERRORS = Object.freeze({
  LANEWAY_ERR_SANDBOX_UNREACHABLE: { status: 502, message: 'the sandbox target refused or could not be reached' },
  LANEWAY_ERR_SANDBOX_TIMEOUT: { status: 504, message: 'the sandbox target did not answer in time' },
  LANEWAY_ERR_SANDBOX_NO_PORT: { status: 502, message: 'the sandbox has no target for this port' },
  LANEWAY_ERR_BASELINE_UNREACHABLE: { status: 502, message: 'the baseline app refused or could not be reached' },
  LANEWAY_ERR_BASELINE_TIMEOUT: { status: 504, message: 'the baseline app did not answer in time' },
  LANEWAY_ERR_LOOP_DETECTED: { status: 508, message: 'the request passed through too many Laneway sidecars (routing loop)' },
  LANEWAY_ERR_BAD_REQUEST: { status: 400, message: 'the request cannot be forwarded (malformed target or headers)' },
  LANEWAY_ERR_TOO_MANY_HEADERS: { status: 431, message: 'the request has more header lines than the sidecar forwards' },
  LANEWAY_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'the request headers are larger than the sidecar forwards (16 KiB)' },
  LANEWAY_ERR_REQUEST_TIMEOUT: { status: 408, message: 'the client stopped sending the request body' },
  LANEWAY_ERR_GRPC_NEEDS_HTTP2: { status: 502, message: 'gRPC needs HTTP/2 end to end; this request would be translated to or from HTTP/1.1' },
  LANEWAY_ERR_CONFIG: { status: 0, message: 'invalid configuration' },
  LANEWAY_ERR_ROUTES_INVALID: { status: 0, message: 'invalid route table' },
} as const satisfies Record<string, ErrorSpec>);

export type SidecarErrorCode = keyof typeof SIDECAR_ERRORS;

/** The JSON body every sidecar-generated error response carries. */
export function errorBody(code: SidecarErrorCode, sandbox?: string, target?: string): string {
  const error: Record<string, string> = { code, message: SIDECAR_ERRORS[code].message };
  if (sandbox !== undefined) error.sandbox = sandbox;
  if (target !== undefined) error.target = target;
  return JSON.stringify({ error });
}
