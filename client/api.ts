// The one typed client of the control plane API: a method per endpoint, the wire types imported from where the server defines them.
import { request } from 'undici';
import { DEFAULT_SERVER } from '../core/constants.js';
import { ConfigError, LanewayError } from '../core/errors.js';
import type { SandboxResource } from '../control-plane/api/sandboxes.js';
import type { SandboxSpec } from '../control-plane/spec.js';
import type { PlanVersion, RunFilter, RunPage, RunRecord } from '../model/plans.js';
import type { RouteSnapshot } from '../model/route-table.js';
import type { ProbeResult, ProbeStarted, TrafficEntry, TrafficPage, TrafficQuery } from '../model/capture.js';
import { createParser } from 'eventsource-parser';
import { toView, type SandboxView, type Sandboxes } from '../validate/actions/wait.js';
import { ValidateError } from '../validate/errors.js';
import type { ParamValue, Plan } from '../validate/plan.js';
import type { RunResult } from '../validate/runner.js';
import type { PlanSummary, StoredVersion } from '../validate/server/plans-api.js';

export type { SandboxResource } from '../control-plane/api/sandboxes.js';
export type { PlanSummary, PlanVersionSummary } from '../validate/server/plans-api.js';

export { DEFAULT_SERVER } from '../core/constants.js';

/** How long one call may take by default; a server-side run waits for its verdict and gets `RUN_WAIT_MS`. */
export const CALL_TIMEOUT_MS = 30_000;
/** A run with load steps can take minutes; the control plane enforces the policy's own limits. */
export const RUN_WAIT_MS = 15 * 60_000;

export type StoredPlan = PlanVersion<Plan>;
export type Run = RunRecord<RunResult>;
/** What an identical or changed apply did (the `laneway-apply` response header). */
export type ApplyResult = 'created' | 'configured' | 'unchanged';

export interface RunRequest {
  readonly sandbox?: string;
  /** a version or tag; default the latest version */
  readonly version?: string;
  readonly params?: Readonly<Record<string, ParamValue>>;
  /** answer with the finished run (true) or at once with the running one */
  readonly wait?: boolean;
}

/** The `--server` flag (or LANEWAY_URL, via the flag's env), else the local default. */
export function serverFrom(values: Readonly<Record<string, unknown>>): string {
  return typeof values.server === 'string' ? values.server : DEFAULT_SERVER;
}

/** LANEWAY_TOKEN, never a flag (flags show up in `ps` and shell history); empty means none. */
export function tokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token = env.LANEWAY_TOKEN;
  return token === undefined || token === '' ? undefined : token;
}

/** An error answer from the control plane: its code, status, message and field, as it sent them. */
export class ApiError extends LanewayError {
  constructor(code: string, status: number, message: string, field?: string, rule?: string) {
    super(code, status, message, field, rule);
    this.name = 'ApiError';
  }
}

/** An ApiError worded for a terminal: the server's message, then its code and status (`… (LANEWAY_ERR_INVALID_FIELD 400)`). */
export function forTerminal(err: unknown): unknown {
  return err instanceof ApiError ? new Error(`${err.message} (${err.code} ${err.status})`) : err;
}

const segment = encodeURIComponent;

/** How long a follow stream that dropped waits before it resumes. */
export const FOLLOW_RETRY_MS = 500;

function queryString(query: object): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query) as [string, unknown][]) if (value !== undefined) params.set(name, String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

export class LanewayClient {
  readonly server: string;
  readonly #token: string | undefined;

  constructor(server: string = DEFAULT_SERVER, token: string | undefined = tokenFromEnv()) {
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

  /** PUT /v1/sandboxes/:name — create or replace. */
  async applySandbox(name: string, spec: SandboxSpec | unknown): Promise<{ result: ApplyResult; sandbox: SandboxResource }> {
    const { headers, json } = await this.#call<SandboxResource>('PUT', `/v1/sandboxes/${segment(name)}`, { name, spec });
    const header = headers['laneway-apply'];
    const result: ApplyResult = header === 'created' || header === 'configured' ? header : 'unchanged';
    return { result, sandbox: json };
  }

  /** GET /v1/sandboxes */
  async listSandboxes(): Promise<{ revision: number; items: SandboxResource[] }> {
    return (await this.#call<{ revision: number; items: SandboxResource[] }>('GET', '/v1/sandboxes')).json;
  }

  /** GET /v1/sandboxes/:name — throws ApiError 404 when there is none. */
  async getSandbox(name: string, signal?: AbortSignal): Promise<SandboxResource> {
    return (await this.#call<SandboxResource>('GET', `/v1/sandboxes/${segment(name)}`, undefined, signal)).json;
  }

  /** GET /v1/sandboxes/:name — undefined when there is none. */
  async findSandbox(name: string, signal?: AbortSignal): Promise<SandboxResource | undefined> {
    try {
      return await this.getSandbox(name, signal);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** DELETE /v1/sandboxes/:name — the revision of the deletion. */
  async deleteSandbox(name: string): Promise<{ revision: number }> {
    return (await this.#call<{ revision: number }>('DELETE', `/v1/sandboxes/${segment(name)}`)).json;
  }

  /** DELETE /v1/sandboxes/:name/lane — ends the local lane on purpose (another laptop may then connect it). */
  async releaseLane(name: string): Promise<void> {
    await this.#call<undefined>('DELETE', `/v1/sandboxes/${segment(name)}/lane`);
  }

  /** GET /v1/workloads/:namespace/:name/routes — `workload` is `<namespace>/<name>`. */
  async routes(workload: string): Promise<RouteSnapshot> {
    const [namespace = '', name = ''] = workload.split('/');
    return (await this.#call<RouteSnapshot>('GET', `/v1/workloads/${segment(namespace)}/${segment(name)}/routes`)).json;
  }

  /** GET /v1/plans */
  async plans(): Promise<PlanSummary[]> {
    return (await this.#call<{ items: PlanSummary[] }>('GET', '/v1/plans')).json.items;
  }

  /** GET /v1/plans/:name/versions/:ref — by version or tag (default: the newest version). */
  async plan(name: string, ref = 'latest'): Promise<StoredPlan> {
    return (await this.#call<StoredPlan>('GET', `/v1/plans/${segment(name)}/versions/${segment(ref)}`)).json;
  }

  /** PUT /v1/plans/:name — stores a version and moves `tags` to it. */
  async putPlan(plan: Plan, tags: readonly string[]): Promise<StoredVersion> {
    return (await this.#call<StoredVersion>('PUT', `/v1/plans/${segment(plan.name)}`, { plan, tags })).json;
  }

  /** POST /v1/plans/:name/runs — runs a stored plan server-side; with `wait`, answers once it finished. */
  async runPlan(name: string, body: RunRequest): Promise<Run> {
    return (await this.#call<Run>('POST', `/v1/plans/${segment(name)}/runs`, body, undefined, body.wait === true ? RUN_WAIT_MS : CALL_TIMEOUT_MS)).json;
  }

  /** GET /v1/runs — newest first; pass `next` back as `after` for the following page. */
  async listRuns(filter: RunFilter = {}, limit?: number, after?: string): Promise<RunPage> {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(filter)) if (value !== undefined) query.set(name, String(value));
    if (limit !== undefined) query.set('limit', String(limit));
    if (after !== undefined) query.set('after', after);
    const text = query.toString();
    return (await this.#call<RunPage>('GET', `/v1/runs${text === '' ? '' : `?${text}`}`)).json;
  }

  /** POST /v1/runs/:id/cancel — resolves with the run once its (cancelled) outcome is stored. */
  async cancelRun(id: string): Promise<Run> {
    return (await this.#call<Run>('POST', `/v1/runs/${segment(id)}/cancel`, {}, undefined, RUN_WAIT_MS)).json;
  }

  /** GET /v1/runs/:id */
  async run(id: string): Promise<Run> {
    return (await this.#call<Run>('GET', `/v1/runs/${segment(id)}`)).json;
  }

  /** GET /v1/sandboxes/:name/traffic — captured exchanges, oldest first (the newest `limit` matching). */
  async traffic(name: string, query: TrafficQuery = {}, signal?: AbortSignal): Promise<TrafficPage> {
    return (await this.#call<TrafficPage>('GET', `/v1/sandboxes/${segment(name)}/traffic${queryString(query)}`, undefined, signal)).json;
  }

  /**
   * Follows GET /v1/sandboxes/:name/traffic/stream until `signal` aborts: each entry to `onEntry`,
   * `onGap` when entries left the ring before they could be sent. A dropped stream is resumed from the
   * last entry seen (Last-Event-ID) after a short pause; an API error (404, 401…) ends it.
   */
  async followTraffic(name: string, query: TrafficQuery, onEntry: (entry: TrafficEntry) => void, signal: AbortSignal, onGap?: (missed: number) => void): Promise<void> {
    let last: number | undefined = query.after;
    while (!signal.aborted) {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
      if (last !== undefined) headers['last-event-id'] = String(last);
      const { after: _after, ...rest } = query;
      try {
        const res = await request(`${this.server}/v1/sandboxes/${segment(name)}/traffic/stream${queryString(rest)}`, { headers, signal, bodyTimeout: 0 });
        if (res.statusCode !== 200) {
          const text = await res.body.text();
          const error = (JSON.parse(text || '{}') as { error?: { code?: string; message?: string } }).error;
          throw new ApiError(error?.code ?? 'LANEWAY_ERR_CONTROL_PLANE', res.statusCode, error?.message ?? `HTTP ${res.statusCode}`);
        }
        const parser = createParser({
          onEvent: (event) => {
            if (event.event === 'gap') return onGap?.((JSON.parse(event.data) as { missed: number }).missed);
            const entry = JSON.parse(event.data) as TrafficEntry;
            last = entry.seq;
            onEntry(entry);
          },
        });
        for await (const chunk of res.body) parser.feed((chunk as Buffer).toString('utf8'));
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, FOLLOW_RETRY_MS));
    }
  }

  /** POST /v1/probes — a probe key, announced to every sidecar for a few seconds. */
  async startProbe(sandbox?: string): Promise<ProbeStarted> {
    return (await this.#call<ProbeStarted>('POST', '/v1/probes', sandbox === undefined ? {} : { sandbox })).json;
  }

  /** GET /v1/probes/:id */
  async probe(id: string): Promise<ProbeResult> {
    return (await this.#call<ProbeResult>('GET', `/v1/probes/${segment(id)}`)).json;
  }

  /** The Sandboxes the plan runner (and its `wait` action) reads, over this API. */
  sandboxes(): Sandboxes {
    return {
      get: async (name: string, signal?: AbortSignal): Promise<SandboxView | undefined> => {
        const resource = await this.findSandbox(name, signal);
        return resource === undefined ? undefined : toView(resource);
      },
      traffic: async (name: string, query: TrafficQuery, signal?: AbortSignal): Promise<TrafficPage | undefined> => {
        try {
          return await this.traffic(name, query, signal);
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) return undefined;
          throw err;
        }
      },
    };
  }

  /** One JSON call; a non-2xx answer becomes an ApiError with the server's code and message. */
  async #call<T>(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    signal?: AbortSignal,
    timeoutMs = CALL_TIMEOUT_MS,
  ): Promise<{ status: number; headers: Record<string, unknown>; json: T }> {
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
}
