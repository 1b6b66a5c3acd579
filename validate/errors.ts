// Every error plans, policies, runs and the plans API show a user or an agent: one table, stable codes, an HTTP status each.
import { CONTROL_PLANE_ERRORS } from '../model/api-errors.js';
import { errorBodySchema, type ErrorSpec, LanewayError } from '../core/errors.js';

/**
 * The validation error table. Codes are part of the public contract (README "Validate a change",
 * "Error codes"); never reuse or rename one. A test checks they are unique, disjoint from the sidecar's
 * and the control plane's, and documented. Status 0: the error never is an HTTP answer (it appears in
 * a run result or on the CLI's stderr).
 */
export const VALIDATE_ERRORS = Object.freeze({
  LANEWAY_ERR_PLAN_INVALID: { status: 400, message: 'the plan is not valid (the message names the path of the error)' },
  LANEWAY_ERR_PARAM_INVALID: { status: 400, message: 'a plan parameter is missing, unknown or of the wrong type' },
  LANEWAY_ERR_POLICY_INVALID: { status: 0, message: 'the policy file is not valid (the message names the path of the error)' },
  LANEWAY_ERR_POLICY_VIOLATION: { status: 403, message: 'the plan breaks the platform policy; no step was run' },
  LANEWAY_ERR_SANDBOX_REQUIRED: { status: 400, message: 'the plan sends requests in a sandbox context but no sandbox was named' },
  LANEWAY_ERR_PLAN_NOT_FOUND: { status: 404, message: 'no plan (or plan version or tag) with that name' },
  LANEWAY_ERR_PLAN_VERSION_CONFLICT: { status: 409, message: 'that plan version is already stored with different content' },
  LANEWAY_ERR_RUN_NOT_FOUND: { status: 404, message: 'no run with that id' },
  LANEWAY_ERR_RUNS_BUSY: { status: 503, message: 'too many plan runs in progress on the control plane; retry later' },
  LANEWAY_ERR_RUN_FINISHED: { status: 409, message: 'the run has already finished' },
  LANEWAY_ERR_RUN_CANCELLED: { status: 0, message: 'the run was cancelled (POST /v1/runs/:id/cancel)' },
  LANEWAY_ERR_RUN_ABORTED: { status: 0, message: 'the run was stopped before it finished (control plane shutdown or restart)' },
  LANEWAY_ERR_STEP_REQUEST_FAILED: { status: 0, message: 'the request of a step could not be completed (connection refused, reset, bad URL)' },
  LANEWAY_ERR_STEP_TIMEOUT: { status: 0, message: 'the request of a step did not complete within its timeout' },
  LANEWAY_ERR_STEP_REFERENCE: { status: 0, message: 'a ${{ steps.<id>.<field> }} reference has no value (the step did not produce it)' },
  LANEWAY_ERR_STEP_CAPTURE: { status: 0, message: 'a capture matched nothing in the response' },
  LANEWAY_ERR_STEP_LOAD_FAILED: { status: 0, message: 'the load generator could not run against the target' },
  LANEWAY_ERR_SANDBOX_NOT_READY: { status: 0, message: 'the sandbox did not become Ready within the wait timeout' },
  LANEWAY_ERR_CAPTURE_OFF: { status: 0, message: 'a traffic step needs the sandbox to capture traffic (spec.capture)' },
  LANEWAY_ERR_CONTROL_PLANE: { status: 0, message: 'the control plane could not be reached or refused the request' },
} as const satisfies Record<string, ErrorSpec>);

export type ValidateErrorCode = keyof typeof VALIDATE_ERRORS;

/** A validation error; `field` is the path of the offending input (`steps[2].load.rate`), `rule` the policy rule broken. */
export class ValidateError extends LanewayError {
  constructor(code: ValidateErrorCode, message?: string, field?: string, rule?: string) {
    const spec = VALIDATE_ERRORS[code];
    super(code, spec.status, message ?? spec.message, field, rule);
    this.name = 'ValidateError';
  }
}

/**
 * PLAN_INVALID with every problem found: the message lists them all (`first; also: second`, like a
 * policy refusal), `field` is the first one's path, `problems` keeps them apart for a terminal.
 */
export class PlanInvalidError extends ValidateError {
  readonly problems: readonly { readonly path: string; readonly message: string }[];
  constructor(problems: readonly { readonly path: string; readonly message: string }[]) {
    const [first, ...rest] = problems;
    super('LANEWAY_ERR_PLAN_INVALID', `${first!.message}${rest.length > 0 ? `; also: ${rest.map((p) => p.message).join('; also: ')}` : ''}`, first!.path);
    this.problems = problems;
  }
}

/** `path: problem` as a PLAN_INVALID error: the path comes first so a reader finds the line at once. */
export function planError(path: string, problem: string): ValidateError {
  return new ValidateError('LANEWAY_ERR_PLAN_INVALID', `${path}: ${problem}`, path);
}

/** The JSON Schema of the error body of the plans API: codes from both tables (the plugin answers with either). */
export const PLANS_ERROR_SCHEMA = errorBodySchema(
  [...Object.keys(CONTROL_PLANE_ERRORS), ...Object.keys(VALIDATE_ERRORS)],
  'plan.steps[2].http.url or params.orderId',
  true,
);
