// The one client of the control plane API (sandboxes, routes, plans, runs): what `laneway sandbox`, `plan`, `skills` and `mcp` call.
import { request } from 'undici';
import { ConfigError, LanewayError } from '../core/errors.js';
import { toView, type SandboxResource, type SandboxView, type Sandboxes } from './actions/wait.js';
import { ValidateError } from './errors.js';
import type { Plan } from './plan.js';
import type { RunResult } from './runner.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:7070';

/** The `--server` flag (or LANEWAY_URL, via the flag's env), else the local default. */
export function serverFrom(values: Readonly<Record<string, unknown>>): string {
  return typeof values.server === 'string' ? values.server : DEFAULT_SERVER;
}

/** An error answer from the control plane: its code, status, message and field, as it sent them. */
export class ApiError extends LanewayError {
  constructor(code: string, status: number, message: string, field?: string, rule?: string) {
    super(code, status, message, field, rule);
    this.name = 'ApiError';
  }
}

/** An ApiError worded for a terminal: the server's message, then its code and status (`… (LANEWAY_ERR_PLAN_VERSION_CONFLICT 409)`), as `laneway sandbox` prints them. */
export function forTerminal(err: unknown): unknown {
  return err instanceof ApiError ? new Error(`${err.message} (${err.code} ${err.status})`) : err;
}

export interface PlanVersionSummary {
  readonly version: string;
  readonly tags: readonly string[];
  readonly createdAt: string;
  readonly description: string | null;
  readonly whenToUse: string | null;
  readonly params: Record<string, unknown>;
}

export interface PlanSummary {
  readonly name: string;
  /** tag → version */
  readonly tags: Readonly<Record<string, string>>;
  readonly versions: readonly PlanVersionSummary[];
}

export interface StoredPlan {
  readonly name: string;
  readonly version: string;
  readonly tags: readonly string[];
  readonly createdAt: string;
  readonly plan: Plan;
}

export interface Run {
  readonly id: string;
  readonly plan: string;
  readonly version: string;
  readonly sandbox: string | null;
  readonly status: 'running' | 'passed' | 'failed' | 'error';
  readonly createdAt: string;
  readonly finishedAt: string | null;
  readonly result: RunResult | null;
  readonly error: { readonly code: string; readonly message: string } | null;
}

export class ControlPlaneClient {
  readonly server: string;
  readonly #token: string | undefined;

  constructor(server: string = DEFAULT_SERVER, token: string | undefined = process.env.LANEWAY_TOKEN || undefined) {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw new ConfigError('--server', `expected a URL like ${DEFAULT_SERVER}, got '${server}'`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('--server', 'must be an http:// or https:// URL');
    this.server = url.href.replace(/\/+$/, '');
    this.#token = token;
  }

  /** One JSON call; a non-2xx answer becomes an ApiError with the server's code and message. */
  async call<T>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal, timeoutMs = 30_000): Promise<{ status: number; headers: Record<string, unknown>; json: T }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await request(`${this.server}${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
      throw new ValidateError('LANEWAY_ERR_CONTROL_PLANE', `cannot reach the control plane at ${this.server}: ${e.code ?? e.cause?.code ?? e.message}`);
    }
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.statusCode >= 400) {
      const error = (json as { error?: { code?: string; message?: string; field?: string; rule?: string } } | undefined)?.error;
      throw new ApiError(error?.code ?? 'LANEWAY_ERR_CONTROL_PLANE', res.statusCode, error?.message ?? `HTTP ${res.statusCode}: ${text.slice(0, 200)}`, error?.field, error?.rule);
    }
    return { status: res.statusCode, headers: res.headers as Record<string, unknown>, json: json as T };
  }

  async plans(): Promise<PlanSummary[]> {
    return (await this.call<{ items: PlanSummary[] }>('GET', '/v1/plans')).json.items;
  }

  /** A stored plan by version or tag (default: the newest version). */
  async plan(name: string, ref?: string): Promise<StoredPlan> {
    const path = ref === undefined ? `/v1/plans/${encodeURIComponent(name)}/versions/latest` : `/v1/plans/${encodeURIComponent(name)}/versions/${encodeURIComponent(ref)}`;
    return (await this.call<StoredPlan>('GET', path)).json;
  }

  async run(id: string): Promise<Run> {
    return (await this.call<Run>('GET', `/v1/runs/${encodeURIComponent(id)}`)).json;
  }

  /** The Sandboxes the runner needs, over this API. */
  sandboxes(): Sandboxes {
    return {
      get: async (name: string, signal?: AbortSignal): Promise<SandboxView | undefined> => {
        try {
          const { json } = await this.call<SandboxResource>('GET', `/v1/sandboxes/${encodeURIComponent(name)}`, undefined, signal);
          return toView(json);
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) return undefined;
          throw err;
        }
      },
    };
  }
}
