// The one error shape of Laneway: a stable code, an HTTP status, an optional field path and policy rule, one JSON body.

export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
}

/** What a client receives from any Laneway API: `{"error":{"code","message","field"?,"rule"?}}`. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string; readonly rule?: string };
}

/**
 * Base class of every Laneway error: a stable code, an HTTP status (0 when it never reaches a client),
 * a human message, and where the input was wrong (`field`, e.g. `spec.forks[0].targets.8080`) or which
 * policy rule it broke (`rule`). Each part keeps its own code table; the shape is the same everywhere.
 */
export class LanewayError extends Error {
  readonly code: string;
  readonly status: number;
  readonly field: string | undefined;
  readonly rule: string | undefined;
  constructor(code: string, status: number, message: string, field?: string, rule?: string) {
    super(message);
    this.name = 'LanewayError';
    this.code = code;
    this.status = status;
    this.field = field;
    this.rule = rule;
  }

  toBody(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.field === undefined ? {} : { field: this.field }),
        ...(this.rule === undefined ? {} : { rule: this.rule }),
      },
    };
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
