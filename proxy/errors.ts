// Every error the sidecar shows a client or an operator: one table, stable codes, an HTTP status each.

export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
}

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
  LANEWAY_ERR_CONFIG: { status: 0, message: 'invalid configuration' },
  LANEWAY_ERR_ROUTES_INVALID: { status: 0, message: 'invalid route table' },
} as const satisfies Record<string, ErrorSpec>);

export type SidecarErrorCode = keyof typeof SIDECAR_ERRORS;

/** Base class: a stable code, an HTTP status (0 when it never reaches a client) and a human message. */
export class LanewayError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, status: number, message: string) {
    super(message);
    this.name = 'LanewayError';
    this.code = code;
    this.status = status;
  }
}

/** Invalid configuration: the process prints the one-line message and exits with status 2. */
export class ConfigError extends LanewayError {
  readonly flag: string;
  constructor(flag: string, problem: string) {
    super('LANEWAY_ERR_CONFIG', 0, `laneway: ${flag}: ${problem}`);
    this.name = 'ConfigError';
    this.flag = flag;
  }
}

/** A route table that failed validation; `path` points at the offending field (e.g. `routes[3].targets.8080`). */
export class RouteTableError extends LanewayError {
  readonly path: string;
  constructor(path: string, problem: string) {
    super('LANEWAY_ERR_ROUTES_INVALID', 0, `${path}: ${problem}`);
    this.name = 'RouteTableError';
    this.path = path;
  }
}

/** The JSON body every sidecar-generated error response carries. */
export function errorBody(code: SidecarErrorCode, sandbox?: string, target?: string): string {
  const error: Record<string, string> = { code, message: SIDECAR_ERRORS[code].message };
  if (sandbox !== undefined) error.sandbox = sandbox;
  if (target !== undefined) error.target = target;
  return JSON.stringify({ error });
}
